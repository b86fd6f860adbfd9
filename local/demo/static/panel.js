/* The side panel of the demo shop: what Nudge knows and decides about this visitor, read
 * live from the local stack's control API (/_local/...) every 2 seconds after a drain, and
 * buttons that move the stack's virtual clock forward. Local only: none of this exists on AWS. */
(function () {
  "use strict";
  var nudge = window.nudge;
  var panel = document.getElementById("panel");
  var toggle = document.getElementById("toggle");
  var PANEL = "demo.panel";

  function $(id) { return document.getElementById(id); }
  function escape(text) {
    return String(text === undefined || text === null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function when(iso) { return iso ? String(iso).replace("T", " ").slice(0, 16) : ""; }

  // ---- open or closed, kept across pages ---------------------------------------------------
  function setOpen(open) {
    panel.classList.toggle("closed", !open);
    document.body.classList.toggle("panel-closed", !open);
    toggle.textContent = open ? "⟨" : "⟩";
    toggle.setAttribute("aria-expanded", String(open));
    try { localStorage.setItem(PANEL, open ? "open" : "closed"); } catch (e) { /* this page only */ }
  }
  var stored = null;
  try { stored = localStorage.getItem(PANEL); } catch (e) { /* blocked storage */ }
  setOpen(stored ? stored !== "closed" : window.innerWidth > 800);
  toggle.onclick = function () { setOpen(panel.classList.contains("closed")); };

  // ---- reading the stack -------------------------------------------------------------------
  function who() { return nudge.userId || nudge.anonymousId(); }
  function getJson(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }
  function post(url, body) {
    return fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body) });
  }

  var ARMS = {
    h24: "the reminder goes 24 hours after the cart's last Product Added with no order: press <b>+1 day</b>.",
    h48: "the reminder goes 48 hours after the cart's last Product Added with no order: press <b>+2 days</b>.",
    holdout: "the 10 % holdout: Nudge decides and records the reminder but never sends it, so the experiment can " +
      "measure each arm against no email. <button class=\"quiet\" data-start-over>Start over</button> to try " +
      "again as someone else."
  };
  function armNote(decisions, signedIn) {
    var arm = null;
    decisions.forEach(function (d) { if (d.trigger === "abandoned_cart" && d.arm) arm = d.arm; });
    var box = $("arm-note");
    box.className = "arm" + (arm ? " " + arm : "");
    if (!arm) {
      box.innerHTML = "Add a product to your cart to enter the abandoned-cart experiment: a reminder after 24 h " +
        "(45 %) or 48 h (45 %), or none (the 10 % holdout).";
      return;
    }
    box.innerHTML = "<b>Abandoned-cart experiment: arm " + escape(arm) + "</b><br>You are in " +
      (arm === "holdout" ? "" : "arm " + escape(arm) + ": ") + (ARMS[arm] || "a variant of the experiment.") +
      (signedIn || arm === "holdout" ? "" : "<br>Sign in at checkout first: the reminder needs your email.");
  }

  // Explain's decisions, by trigger: the latest first, the earlier ones folded away.
  function decisionsHtml(decisions) {
    if (!decisions.length) return "(nothing yet)";
    var order = [], byTrigger = {};
    decisions.slice().sort(function (a, b) { return String(a.at).localeCompare(String(b.at)); })
      .forEach(function (d) {
        if (!byTrigger[d.trigger]) { byTrigger[d.trigger] = []; order.push(d.trigger); }
        byTrigger[d.trigger].push(d);
      });
    order.sort(function (a, b) {
      var last = function (t) { return String(byTrigger[t][byTrigger[t].length - 1].at); };
      return last(b).localeCompare(last(a));
    });
    function line(d) {
      return escape(d.outcome) + (d.arm ? " (arm " + escape(d.arm) + ")" : "") + ' <span class="note">' +
        escape(when(d.at)) + "</span><br><span class=\"note\">" + escape(d.reason) + "</span>";
    }
    return order.map(function (trigger) {
      var list = byTrigger[trigger], latest = list[list.length - 1], earlier = list.slice(0, -1).reverse();
      return '<div class="decision ' + escape(latest.outcome) + '" data-trigger="' + escape(trigger) + '"><b>' +
        escape(trigger) + "</b> " + line(latest) + (earlier.length ? "<details><summary>" + earlier.length +
        " earlier</summary>" + earlier.map(function (d) { return "<div>" + line(d) + "</div>"; }).join("") +
        "</details>" : "") + "</div>";
    }).join("");
  }

  // The outbox lists SES's emails first (/_local/outbox/<n> renders the n-th), then the fires
  // still on their way, each with its delivery state.
  function emailsOf(outbox) {
    var emails = [];
    for (var n = 0; n < outbox.length && typeof outbox[n].fire !== "object"; n++) {
      emails.push({ n: n, entry: outbox[n] });
    }
    return emails;
  }
  function firesHtml(fires, outbox, emails) {
    if (!fires.length) return "(none)";
    var states = {}, sent = {};
    outbox.forEach(function (entry) {
      if (entry.fire && typeof entry.fire === "object") states[entry.fire.fireId] = entry.state;
    });
    emails.forEach(function (email) { sent[email.entry.fire] = email.n; });
    return fires.map(function (f) {
      var state = f.fireId in sent ? '<a target="_blank" href="/_local/outbox/' + sent[f.fireId] + '">sent</a>'
        : escape(states[f.fireId] || "");
      return '<div class="fire"><b>' + escape(f.trigger) + "</b> " + escape(f.channel) +
        (f.variant ? " (arm " + escape(f.variant) + ")" : "") + ' <span class="note">' + escape(when(f.firedAt)) +
        "</span> " + state + "</div>";
    }).join("");
  }
  function outboxHtml(emails, addresses) {
    var mine = emails.filter(function (email) {
      var to = [].concat(email.entry.to || []).map(String);
      return addresses.some(function (address) { return address && to.indexOf(address) >= 0; });
    });
    if (!mine.length) return "(none yet)";
    return mine.map(function (email) {
      return '<div class="email">✉ <a target="_blank" href="/_local/outbox/' + email.n + '">' +
        escape(email.entry.subject) + '</a> <span class="note">' + escape(email.entry.trigger || "") +
        (email.entry.variant ? ", arm " + escape(email.entry.variant) : "") + "</span></div>";
    }).join("");
  }

  var refreshing = null;
  function refresh() {
    if (refreshing) return refreshing;
    var id = who();
    $("identity").innerHTML = nudge.userId ? "Signed in as <b>" + escape(nudge.userId) + "</b><br><span class=\"note\">" +
      "anonymousId " + escape(nudge.anonymousId()) + "</span>" : "An anonymous visitor<br><span class=\"note\">" +
      "anonymousId " + escape(nudge.anonymousId()) + "</span>";
    var flushed = typeof nudge.flush === "function" ? Promise.resolve(nudge.flush()).catch(function () {}) : Promise.resolve();
    refreshing = flushed.then(function () { return post("/_local/drain"); }).then(function () {
      var user = encodeURIComponent(id);
      return Promise.all([getJson("/_local/clock"), getJson("/_local/explain/" + user), getJson("/_local/users/" + user),
        getJson("/_local/fires?userId=" + user), getJson("/_local/outbox")]);
    }).then(function (answers) {
      var clock = answers[0], explained = answers[1], person = answers[2], fires = answers[3] || [];
      var outbox = answers[4] || [], profile = person && person.profile;
      if (clock) $("now").textContent = when(clock.now) + " UTC";
      var decisions = (explained && explained.decisions) || [];
      armNote(decisions, !!nudge.userId);
      $("decisions").innerHTML = decisionsHtml(decisions);
      var emails = emailsOf(outbox);
      $("fires").innerHTML = firesHtml(fires, outbox, emails);
      var addresses = [nudge.userId, profile && profile.traits && profile.traits.email];
      $("outbox").innerHTML = outboxHtml(emails, addresses);
      $("profile").textContent = profile ? JSON.stringify(profile, null, 2) : "(nothing stored yet)";
      if (typeof nudge.stats === "function") {
        var stats = nudge.stats();
        $("sdk-stats").textContent = "SDK: " + stats.delivered + " delivered, " + stats.pending + " queued";
      }
    }).catch(function () { /* the panel is best effort; the shop keeps working */ })
      .then(function () { refreshing = null; });
    return refreshing;
  }

  // ---- the clock ---------------------------------------------------------------------------
  // An advance stops short when its work budget runs out ("complete": false): go on from there.
  function advance(seconds, rounds) {
    return post("/_local/clock/advance", { seconds: seconds }).then(function (r) { return r.json(); })
      .then(function (answer) {
        if (answer.complete === false && rounds > 1) {
          var left = (Date.parse(answer.target) - Date.parse(answer.now)) / 1000;
          if (left > 0) return advance(left, rounds - 1);
        }
        return answer;
      });
  }
  Array.prototype.forEach.call(document.querySelectorAll("[data-advance]"), function (button) {
    button.onclick = function () {
      var buttons = document.querySelectorAll("[data-advance]");
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
      $("clock-status").textContent = "Advancing " + button.textContent + ": running the timers that fall due…";
      Promise.resolve(typeof nudge.flush === "function" ? nudge.flush() : null).catch(function () {})
        .then(function () { return advance(Number(button.dataset.advance), 10); })
        .then(function (answer) {
          $("clock-status").textContent = answer && answer.now ? "Moved to " + when(answer.now) + " UTC (" +
            answer.moments + " moments run)" : "The clock did not move: " + (answer && answer.message);
        }, function () { $("clock-status").textContent = "The clock did not move: is the stack running?"; })
        .then(refresh)
        .then(function () { Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; }); });
    };
  });

  // ---- start over ----------------------------------------------------------------------------
  panel.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-start-over], #start-over")) window.demoStartOver();
  });

  window.demoRefresh = refresh;
  refresh();
  setInterval(refresh, 2000);
})();

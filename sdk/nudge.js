/*
 * Nudge browser SDK: Segment-format beacons, attention and in-app messages; no dependencies.
 *
 *   var nudge = new Nudge({ host: "https://api.example.com", writeKey: "...", socket: "wss://..." });
 *   nudge.page();
 *   nudge.productViewed({ product_id: "42", sku: "MUG-1", name: "Mug", price: 12.5 });
 *   nudge.identify("user-1", { email: "ada@example.com" });
 *
 * docs/sdk.md describes the options, methods, events and guarantees. In short:
 * - Messages go to a queue kept in localStorage (memory when storage is blocked) and are
 *   posted as /v1/b batches with fetch, text/plain (no CORS preflight), the write key in the
 *   query string. Network errors, 408, 429 and 5xx are retried with jittered exponential
 *   backoff, with the same messageIds (the API dedupes by messageId); any other 4xx drops the
 *   batch. When the page is hidden or left, what is queued goes with sendBeacon.
 * - Attention: active seconds (visible, focused, input in the last idleSeconds), Page Engaged
 *   at each mark and on leave (with scroll depth).
 * - In-app: a WebSocket (contract in docs/sdk.md): message/show/drop frames, display rules,
 *   one message at a time, rendered in a shadow root.
 * Public methods never throw: bad arguments log a console warning and do nothing.
 */
(function (global) {
  "use strict";

  var doc = global.document;
  var nav = global.navigator;
  var PREFIX = "nudge.";
  var BEACON_LIMIT = 60000; // sendBeacon and keepalive fetch bodies are capped near 64 KB
  var PRODUCT_KEYS = ["product_id", "sku", "name", "price", "url", "image_url", "category"];
  var INPUTS = ["mousemove", "mousedown", "keydown", "scroll", "touchstart", "wheel", "pointerdown"];

  function warn(text) {
    try { global.console.warn("nudge: " + text); } catch (e) { /* no console */ }
  }
  function now() { return new Date().getTime(); }
  function isObject(value) { return !!value && typeof value === "object" && !(value instanceof Array); }
  function each(list, fn) { for (var i = 0; i < list.length; i++) fn(list[i], i); }
  function copy(source, target) {
    target = target || {};
    for (var key in source) if (Object.prototype.hasOwnProperty.call(source, key)) target[key] = source[key];
    return target;
  }
  function newId() {
    var c = global.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (ch) {
      var r = (Math.random() * 16) | 0;
      return (ch === "x" ? r : (r & 3) | 8).toString(16);
    });
  }
  function parse(text) { try { return JSON.parse(text); } catch (e) { return null; } }
  function jitter(attempt, base, cap) { // full-ish jitter: between half and all of the step
    var step = Math.min(cap, base * Math.pow(2, attempt));
    return step / 2 + Math.random() * step / 2;
  }
  // `*` any run of characters, `?` one character, anchored on the whole path.
  function glob(pattern, path) {
    var source = String(pattern).replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp("^" + source + "$").test(path);
  }

  // localStorage when it works, else memory; nothing is written to storage until `persist`.
  function Store(persist) {
    this.memory = {};
    this.persist = persist;
    try {
      this.ls = global.localStorage;
      this.ls.setItem(PREFIX + "probe", "1");
      this.ls.removeItem(PREFIX + "probe");
    } catch (e) {
      this.ls = null;
    }
  }
  Store.prototype.get = function (key) {
    if (key in this.memory) return this.memory[key];
    try { return this.ls ? this.ls.getItem(PREFIX + key) : null; } catch (e) { return null; }
  };
  Store.prototype.set = function (key, value) {
    this.memory[key] = value;
    if (!this.persist || !this.ls) return;
    try {
      if (value === null) this.ls.removeItem(PREFIX + key);
      else this.ls.setItem(PREFIX + key, value);
      delete this.memory[key];
    } catch (e) { /* quota or blocked: memory keeps it */ }
  };

  function Nudge(options) {
    var self = this;
    options = options || {};
    self.stats_ = { queued: 0, delivered: 0, dropped: 0, rejected: 0, retries: 0 };
    if (!isObject(options) || typeof options.host !== "string" || typeof options.writeKey !== "string" || !options.host || !options.writeKey) {
      warn("new Nudge needs { host, writeKey }; this instance does nothing");
      self.off = true;
      return;
    }
    self.host = options.host.replace(/\/+$/, "");
    self.writeKey = options.writeKey;
    self.socketUrl = options.socket;
    self.flushInterval = options.flushInterval || 2000;
    self.maxBatch = options.maxBatch || 20;
    self.maxQueue = options.maxQueue || 500;
    self.idleMs = (options.idleSeconds || 30) * 1000;
    self.marks = options.marks || [30, 120, 300];
    self.granted = options.consent === undefined || options.consent === true;
    self.store = new Store(self.granted);
    self.userId = self.store.get("userId");
    self.q = self.granted ? parse(self.store.get("queue")) || [] : [];
    self.done = {}; // messageIds delivered or dropped by this page: never written back
    self.attempt = self.retry = 0;
    self.failing = false;
    self.loaded = now();
    self.pending = []; // in-app messages received, in arrival order
    self.startAttention(global.location.pathname);
    self.tick = global.setInterval(function () { self.safe(self.onTick); }, 1000);

    var onInput = function () { self.safe(self.onInput); };
    each(INPUTS, function (name) { global.addEventListener(name, onInput, { passive: true, capture: true }); });
    global.addEventListener("focus", function () { self.safe(self.account); });
    global.addEventListener("blur", function () { self.safe(self.account); });
    global.addEventListener("pagehide", function () {
      self.safe(function () { self.leave(); self.beacon(); });
    });
    doc.addEventListener("visibilitychange", function () {
      self.safe(function () {
        self.account();
        if (doc.visibilityState === "hidden") self.beacon();
      });
    });
    if (self.granted) self.start();
  }

  var P = Nudge.prototype;

  P.safe = function (fn, args) {
    try { return fn.apply(this, args || []); } catch (e) { warn("internal error: " + (e && e.message)); }
  };

  P.start = function () {
    var self = this;
    if (self.q.length) self.schedule(0);
    self.connect();
  };

  // ---- identity ---------------------------------------------------------------------------

  P.anonymousId = function () {
    var id = this.store.get("anonymousId");
    if (!id) {
      id = newId();
      this.store.set("anonymousId", id);
    }
    return id;
  };

  P.identify = function (userId, traits) {
    if ((typeof userId !== "string" && typeof userId !== "number") || userId === "") {
      return warn("identify(userId, traits) needs a userId");
    }
    if (traits !== undefined && !isObject(traits)) return warn("identify: traits must be an object");
    var changed = String(userId) !== this.userId;
    this.userId = String(userId);
    this.store.set("userId", this.userId);
    var id = this.enqueue({ type: "identify", userId: this.userId, traits: traits || {} });
    if (changed) this.connect(true);
    return id;
  };

  P.reset = function () {
    this.userId = null;
    this.store.set("userId", null);
    this.store.set("anonymousId", null);
    this.connect(true);
  };

  P.consent = function (granted) {
    if (typeof granted !== "boolean") return warn("consent(granted) needs true or false");
    this.granted = granted;
    this.store.persist = granted;
    if (granted) {
      for (var key in this.store.memory) this.store.set(key, this.store.memory[key]);
      this.start();
    } else {
      this.q = [];
      this.store.set("queue", null);
      this.close();
    }
  };

  // ---- calls ------------------------------------------------------------------------------

  P.track = function (event, properties) {
    if (typeof event !== "string" || !event) return warn("track(event, properties) needs an event name");
    if (properties !== undefined && !isObject(properties)) return warn("track: properties must be an object");
    return this.enqueue({ type: "track", event: event, properties: copy(properties || {}) });
  };

  P.page = function (name, properties) {
    if (isObject(name) && properties === undefined) { properties = name; name = undefined; }
    if (name !== undefined && name !== null && typeof name !== "string") return warn("page(name, properties): name must be a string");
    if (properties !== undefined && !isObject(properties)) return warn("page: properties must be an object");
    var path = global.location.pathname;
    if (path !== this.path) { // a single-page app moved on: the last page was left
      this.leave();
      this.startAttention(path);
    }
    return this.enqueue({ type: "page", name: name || doc.title, properties: copy(properties || {}) });
  };

  function product(method, value, extra) {
    if (!isObject(value) || (value.product_id === undefined && value.sku === undefined && value.id === undefined)) {
      return warn(method + "(product) needs an object with product_id or sku");
    }
    if (value.price !== undefined && (typeof value.price !== "number" || !isFinite(value.price))) {
      return warn(method + ": price must be a number");
    }
    if (extra !== undefined && !isObject(extra)) return warn(method + ": extra properties must be an object");
    var properties = copy(extra || {}, copy(value));
    if (properties.product_id === undefined) properties.product_id = properties.id || properties.sku;
    delete properties.id;
    return properties;
  }

  P.productViewed = function (value) {
    var properties = product("productViewed", value);
    if (!properties) return;
    this.product = {};
    for (var i = 0; i < PRODUCT_KEYS.length; i++) {
      var key = PRODUCT_KEYS[i];
      if (properties[key] !== undefined && properties[key] !== null) this.product[key] = properties[key];
    }
    return this.track("Product Viewed", properties);
  };
  P.productAdded = function (value, extra) {
    var properties = product("productAdded", value, extra);
    return properties && this.track("Product Added", properties);
  };
  P.productRemoved = function (value, extra) {
    var properties = product("productRemoved", value, extra);
    return properties && this.track("Product Removed", properties);
  };

  function order(method, value, needId) {
    if (!isObject(value)) return warn(method + "(order) needs an object");
    if (needId && !value.order_id) return warn(method + "(order) needs an order_id");
    if (value.products !== undefined && !(value.products instanceof Array)) return warn(method + ": products must be a list");
    var properties = copy(value);
    if (properties.value === undefined && properties.revenue !== undefined) properties.value = properties.revenue;
    if (properties.revenue === undefined && properties.value !== undefined) properties.revenue = properties.value;
    return properties;
  }

  P.checkoutStarted = function (value) {
    var properties = order("checkoutStarted", value, false);
    return properties && this.track("Checkout Started", properties);
  };
  P.orderCompleted = function (value) {
    var properties = order("orderCompleted", value, true);
    return properties && this.track("Order Completed", properties);
  };

  P.context = function () {
    var loc = global.location;
    var zone = null;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* old browser */ }
    return {
      library: { name: "nudge.js", version: "0.2.0" },
      page: { path: loc.pathname, url: loc.href, referrer: doc.referrer, title: doc.title, search: loc.search },
      userAgent: nav.userAgent,
      locale: nav.language,
      timezone: zone
    };
  };

  P.enqueue = function (message) {
    if (!this.granted) return; // consent pending or refused: nothing is kept or sent
    message.messageId = newId();
    message.timestamp = new Date().toISOString();
    message.anonymousId = this.anonymousId();
    if (this.userId && !message.userId) message.userId = this.userId;
    message.context = this.context();
    this.q.push(message);
    this.stats_.queued++;
    while (this.q.length > this.maxQueue) this.forget(this.q.shift(), "dropped");
    this.save();
    this.schedule(this.q.length >= this.maxBatch ? 0 : this.flushInterval);
    return message.messageId;
  };

  P.forget = function (message, counter) {
    this.done[message.messageId] = 1;
    this.stats_[counter]++;
  };

  // Writes the queue back, keeping what other tabs of the site stored and this one has not
  // delivered; the newest maxQueue messages survive.
  P.save = function () {
    if (!this.granted) return;
    var mine = {};
    var self = this;
    each(self.q, function (m) { mine[m.messageId] = 1; });
    var kept = [];
    each(parse(self.store.get("queue")) || [], function (m) {
      if (m && !mine[m.messageId] && !self.done[m.messageId]) kept.push(m);
    });
    kept = kept.concat(self.q);
    self.store.set("queue", kept.length ? JSON.stringify(kept.slice(-self.maxQueue)) : null);
  };

  P.stats = function () {
    var result = copy(this.stats_ || {});
    result.pending = this.q ? this.q.length : 0;
    return result;
  };

  // ---- delivery ---------------------------------------------------------------------------

  P.url = function () { return this.host + "/v1/b?writeKey=" + encodeURIComponent(this.writeKey); };

  P.schedule = function (delay) {
    var self = this;
    if (self.timer || self.sending) return;
    self.timer = global.setTimeout(function () {
      self.timer = null;
      self.safe(self.flush);
    }, delay);
  };

  // The next batch to post: at most maxBatch messages and BEACON_LIMIT bytes.
  P.batch = function (from) {
    var list = [];
    var body = "";
    for (var i = from; i < this.q.length && list.length < this.maxBatch; i++) {
      var next = JSON.stringify({ batch: list.concat([this.q[i]]), sentAt: new Date().toISOString() });
      if (list.length && next.length > BEACON_LIMIT) break;
      list.push(this.q[i]);
      body = next;
    }
    return { list: list, body: body };
  };

  // Posts everything queued, a batch at a time; resolves when the queue is empty or a batch
  // failed (then a retry is scheduled). Calling it skips any backoff in progress.
  P.flush = function () {
    var self = this;
    if (!self.granted || self.off) return Promise.resolve(false);
    if (self.timer) { global.clearTimeout(self.timer); self.timer = null; }
    if (self.sending) return self.sending;
    self.sending = new Promise(function (resolve) {
      function next() {
        var batch = self.batch(0);
        if (!batch.list.length) return finish(true);
        global.fetch(self.url(), {
          method: "POST",
          body: batch.body,
          keepalive: batch.body.length < BEACON_LIMIT,
          credentials: "omit",
          headers: { "Content-Type": "text/plain" }
        }).then(function (response) {
          var status = response.status;
          if (status < 300 || (status < 500 && status !== 408 && status !== 429)) {
            self.remove(batch.list, status < 300 ? "delivered" : "rejected");
            if (status >= 300) warn("the API refused a batch (" + status + "); dropped");
            self.attempt = 0;
            self.failing = false;
            next();
          } else {
            fail();
          }
        }, fail);
      }
      function fail() {
        self.failing = true;
        self.stats_.retries++;
        var delay = jitter(self.attempt++, 1000, 60000);
        finish(false);
        self.schedule(delay);
      }
      function finish(ok) {
        self.sending = null;
        resolve(ok);
      }
      next();
    });
    return self.sending;
  };

  P.remove = function (list, counter) {
    var gone = {};
    var self = this;
    each(list, function (m) { gone[m.messageId] = 1; self.forget(m, counter); });
    var left = [];
    each(self.q, function (m) { if (!gone[m.messageId]) left.push(m); });
    self.q = left;
    self.save();
  };

  // The page is hidden or left: what is queued goes with sendBeacon. While the API answers,
  // a beacon the browser accepted counts as sent; after a failure the messages also stay
  // queued (and are sent again later: the API keeps one copy per messageId).
  P.beacon = function () {
    if (!this.granted || this.off || !nav.sendBeacon || !this.q.length) return;
    var sent = [];
    for (var from = 0; from < this.q.length;) {
      var batch = this.batch(from);
      var accepted = false;
      try { accepted = nav.sendBeacon(this.url(), batch.body); } catch (e) { /* refused */ }
      if (accepted) sent = sent.concat(batch.list);
      from += batch.list.length;
    }
    if (!this.failing && !this.sending && sent.length) this.remove(sent, "delivered");
    else this.save();
  };

  // ---- attention --------------------------------------------------------------------------

  P.startAttention = function (path) {
    this.path = path;
    this.active = 0; // ms
    this.since = now();
    this.lastInput = this.since;
    this.counting = this.focused();
    this.depth = 0;
    this.marked = {};
    this.left = false;
    this.measureScroll();
  };

  P.focused = function () {
    return doc.visibilityState !== "hidden" && (!doc.hasFocus || doc.hasFocus());
  };

  // Adds the active time since the last look: while visible and focused, and at most
  // idleMs after the last input.
  P.account = function () {
    var t = now();
    if (this.counting) {
      var end = Math.min(t, this.lastInput + this.idleMs);
      if (end > this.since) this.active += end - this.since;
    }
    this.since = t;
    this.counting = this.focused();
  };

  P.onInput = function () {
    this.account();
    this.lastInput = now();
    this.measureScroll();
    this.check();
  };

  P.measureScroll = function () {
    var root = doc.documentElement;
    var height = Math.max(root.scrollHeight, doc.body ? doc.body.scrollHeight : 0);
    var seen = (global.pageYOffset || root.scrollTop || 0) + global.innerHeight;
    var depth = height <= global.innerHeight ? 100 : Math.round(Math.min(1, seen / height) * 100);
    if (depth > this.depth) this.depth = depth;
  };

  P.activeSeconds = function () { return Math.floor(this.active / 1000); };

  P.engaged = function (mark) {
    var properties = { active_seconds: this.activeSeconds(), path: this.path, mark: mark };
    if (mark === "leave") properties.scroll_depth = this.depth;
    copy(this.product || {}, properties);
    this.track("Page Engaged", properties);
  };

  P.leave = function () {
    if (this.left) return;
    this.account();
    this.measureScroll();
    this.left = true;
    this.engaged("leave");
  };

  P.onTick = function () {
    this.account();
    var self = this;
    each(self.marks, function (mark) {
      if (!self.marked[mark] && self.activeSeconds() >= mark) {
        self.marked[mark] = 1;
        self.engaged(mark);
      }
    });
    self.check();
  };

  // ---- in-app messages --------------------------------------------------------------------

  P.connect = function (fresh) {
    var self = this;
    if (!self.socketUrl || !global.WebSocket || !self.granted) return;
    if (fresh) {
      self.close();
      self.pending = []; // a new identity: the old one's messages are not for this person
      self.acked = null;
    } else if (self.ws) {
      return;
    }
    var query = "writeKey=" + encodeURIComponent(self.writeKey) + "&anonymousId=" + encodeURIComponent(self.anonymousId());
    if (self.userId) query += "&userId=" + encodeURIComponent(self.userId);
    var ws = new global.WebSocket(self.socketUrl + (self.socketUrl.indexOf("?") < 0 ? "?" : "&") + query);
    self.ws = ws;
    ws.onopen = function () {
      self.retry = 0;
      ws.send(JSON.stringify({ action: "sync" }));
    };
    ws.onmessage = function (event) { self.safe(self.onFrame, [parse(event.data)]); };
    ws.onclose = function () {
      if (self.ws !== ws) return; // replaced or closed on purpose
      self.ws = null;
      self.acked = null;
      self.reconnect = global.setTimeout(function () { self.safe(self.connect); }, jitter(self.retry++, 1000, 30000));
    };
  };

  P.close = function () {
    var ws = this.ws;
    this.ws = null;
    global.clearTimeout(this.reconnect);
    if (ws) try { ws.close(); } catch (e) { /* already closed */ }
  };

  P.onFrame = function (frame) {
    if (!isObject(frame) || typeof frame.fireId !== "string") return;
    var id = frame.fireId;
    if (frame.type === "message") {
      if (typeof frame.html !== "string" || id === this.shown) return;
      for (var i = 0; i < this.pending.length; i++) if (this.pending[i].fireId === id) return;
      this.pending.push(frame);
    } else if (frame.type === "show" && id === this.acked) {
      this.acked = null;
      var message = this.take(id);
      if (message) this.render(message);
    } else if (frame.type === "drop") {
      this.take(id);
      if (id === this.acked) this.acked = null;
    }
    this.check();
  };

  P.take = function (id) {
    for (var i = 0; i < this.pending.length; i++) {
      if (this.pending[i].fireId === id) return this.pending.splice(i, 1)[0];
    }
  };

  P.rulesHold = function (display) {
    display = display || {};
    var path = global.location.pathname;
    var excluded = false;
    each(display.exclude || [], function (pattern) { if (glob(pattern, path)) excluded = true; });
    if (excluded) return false;
    this.measureScroll();
    var results = [];
    if (typeof display.delay === "number") results.push(now() - this.loaded >= display.delay * 1000);
    if (typeof display.scroll === "number") results.push(this.depth >= display.scroll);
    if (!results.length) return true;
    var all = display.match === "all";
    for (var i = 0; i < results.length; i++) if (results[i] !== all) return !all;
    return all;
  };

  // Acks the first pending message whose rules hold, when nothing is displayed or awaited.
  P.check = function () {
    if (this.shown || this.acked || !this.ws || this.ws.readyState !== 1 || doc.visibilityState === "hidden") return;
    for (var i = 0; i < this.pending.length; i++) {
      var message = this.pending[i];
      if (this.rulesHold(message.display)) {
        this.acked = message.fireId;
        this.ws.send(JSON.stringify({ action: "ack", fireId: message.fireId }));
        return;
      }
    }
  };

  P.render = function (message) {
    var self = this;
    var host = doc.createElement("div");
    host.setAttribute("data-nudge-message", message.fireId);
    var root = host.attachShadow({ mode: "open" });
    root.innerHTML = message.html;
    if (!root.querySelector("[data-nudge-dismiss]")) {
      var close = doc.createElement("button");
      close.setAttribute("data-nudge-dismiss", "");
      close.setAttribute("aria-label", "Close");
      close.textContent = "\u00d7";
      root.appendChild(close);
    }
    var about = { fire_id: message.fireId, trigger: message.trigger };
    root.addEventListener("click", function (event) {
      self.safe(function () {
        for (var node = event.target; node && node !== root; node = node.parentNode) {
          if (node.hasAttribute && node.hasAttribute("data-nudge-dismiss")) {
            event.preventDefault();
            self.track("In-App Message Dismissed", copy(about));
            if (host.parentNode) host.parentNode.removeChild(host);
            self.shown = null;
            return self.check();
          }
          if (node.tagName === "A" && node.href) {
            return self.track("In-App Message Clicked", copy(about, { url: node.href }));
          }
        }
      });
    });
    doc.body.appendChild(host);
    self.shown = message.fireId;
    self.track("In-App Message Shown", copy(about));
  };

  // Every public method runs inside a try/catch: nothing the SDK does throws into the page.
  each(["page", "track", "identify", "flush", "anonymousId", "reset", "consent", "stats",
    "productViewed", "productAdded", "productRemoved", "checkoutStarted", "orderCompleted"], function (name) {
    var method = P[name];
    P[name] = function () {
      if (this.off && name !== "stats") return name === "flush" ? Promise.resolve(false) : undefined;
      return this.safe(method, arguments);
    };
  });

  global.Nudge = Nudge;
})(window);

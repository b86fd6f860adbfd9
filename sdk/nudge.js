/*
 * Nudge browser SDK: Segment-format beacons with no dependencies.
 *
 *   const nudge = new Nudge({ host: "https://api.example.com", writeKey: "..." });
 *   nudge.page();
 *   nudge.track("Product Added", { cart_id: "c1", sku: "42", price: 9.5 });
 *   nudge.identify("user-1", { email: "ada@example.com" });
 *
 * Messages are queued and sent as one /v1/batch beacon: on a timer, when the queue is
 * full, and when the page is hidden or left. Beacons carry a text/plain string body:
 * Chromium refuses sendBeacon with an application/json Blob, and text/plain needs no
 * CORS preflight. The write key travels as a query parameter for the same reason.
 */
(function (global) {
  "use strict";

  var ANONYMOUS_ID_KEY = "nudge.anonymousId";
  var USER_ID_KEY = "nudge.userId";
  var BEACON_LIMIT = 60 * 1024; // browsers cap a beacon near 64 KB

  function newId() {
    if (global.crypto && global.crypto.randomUUID) return global.crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
    });
  }

  function stored(key, create) {
    try {
      var value = global.localStorage.getItem(key);
      if (!value && create) {
        value = create();
        global.localStorage.setItem(key, value);
      }
      return value;
    } catch (e) {
      return create ? create() : null; // storage blocked: an id per page view
    }
  }

  function Nudge(options) {
    if (!options || !options.host || !options.writeKey) {
      throw new Error("Nudge needs { host, writeKey }");
    }
    this.host = options.host.replace(/\/+$/, "");
    this.writeKey = options.writeKey;
    this.maxBatch = options.maxBatch || 20;
    this.queue = [];
    this.userId = stored(USER_ID_KEY, null);
    var self = this;
    this.timer = global.setInterval(function () { self.flush(); }, options.flushInterval || 2000);
    global.addEventListener("pagehide", function () { self.flush(); });
    global.document.addEventListener("visibilitychange", function () {
      if (global.document.visibilityState === "hidden") self.flush();
    });
  }

  Nudge.prototype.anonymousId = function () {
    return stored(ANONYMOUS_ID_KEY, newId);
  };

  Nudge.prototype.context = function () {
    var loc = global.location;
    var zone = null;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* old browser */ }
    return {
      library: { name: "nudge.js", version: "0.1.0" },
      page: { path: loc.pathname, url: loc.href, referrer: global.document.referrer, title: global.document.title, search: loc.search },
      userAgent: global.navigator.userAgent,
      locale: global.navigator.language,
      timezone: zone
    };
  };

  Nudge.prototype.enqueue = function (message) {
    message.messageId = newId();
    message.timestamp = new Date().toISOString();
    message.anonymousId = this.anonymousId();
    if (this.userId && !message.userId) message.userId = this.userId;
    message.context = this.context();
    this.queue.push(message);
    if (this.queue.length >= this.maxBatch) this.flush();
    return message.messageId;
  };

  Nudge.prototype.track = function (event, properties) {
    return this.enqueue({ type: "track", event: event, properties: properties || {} });
  };

  Nudge.prototype.page = function (name, properties) {
    var props = properties || {};
    return this.enqueue({ type: "page", name: name || global.document.title, properties: props });
  };

  Nudge.prototype.identify = function (userId, traits) {
    this.userId = String(userId);
    try { global.localStorage.setItem(USER_ID_KEY, this.userId); } catch (e) { /* see stored() */ }
    return this.enqueue({ type: "identify", userId: this.userId, traits: traits || {} });
  };

  // Sends everything queued; returns true when the browser accepted every beacon.
  Nudge.prototype.flush = function () {
    var ok = true;
    while (this.queue.length) {
      var batch = [];
      var body = "";
      while (this.queue.length) {
        var candidate = JSON.stringify({ batch: batch.concat([this.queue[0]]), sentAt: new Date().toISOString() });
        if (batch.length && candidate.length > BEACON_LIMIT) break;
        batch.push(this.queue.shift());
        body = candidate;
      }
      ok = this.send(body) && ok;
    }
    return ok;
  };

  Nudge.prototype.send = function (body) {
    var url = this.host + "/v1/b?writeKey=" + encodeURIComponent(this.writeKey);
    if (global.navigator.sendBeacon && global.navigator.sendBeacon(url, body)) return true;
    // No beacon (or the browser refused it): a keepalive fetch, still text/plain.
    global.fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } });
    return false;
  };

  global.Nudge = Nudge;
})(window);

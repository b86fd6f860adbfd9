/* The demo shop: a catalogue, product pages, a cart and a checkout, with the browser SDK
 * (sdk/nudge.js) installed as a customer would. The page the path names is drawn here;
 * panel.js draws the side panel. No framework, no build step. */
(function () {
  "use strict";
  var body = document.body;
  var origin = location.origin;

  // The local stack fills these in; opened as a file or elsewhere they stay placeholders.
  function filled(value) { return value && value.indexOf("__") !== 0 ? value : undefined; }
  var nudge = window.nudge = new Nudge({
    host: origin, writeKey: filled(body.dataset.writeKey) || "dev-write-key", socket: filled(body.dataset.socket)
  });

  // The SDK's e-commerce helpers when it has them, else the same Segment events by track().
  function merged(value, extra) {
    var properties = {}, key;
    for (key in value) properties[key] = value[key];
    for (key in extra || {}) properties[key] = extra[key];
    return properties;
  }
  function send(helper, event, value, extra) {
    if (typeof nudge[helper] === "function") return nudge[helper](value, extra);
    return nudge.track(event, merged(value, extra));
  }

  // ---- the catalogue ----------------------------------------------------------------------
  var PRODUCTS = [
    { product_id: "mug", sku: "MUG-1", name: "Ceramic mug", price: 12.5, category: "Kitchen",
      text: "Thrown by hand, glazed twice, holds a generous 350 ml of whatever gets you going." },
    { product_id: "boots", sku: "BOOT-7", name: "Trail boots", price: 129.0, category: "Outdoor",
      text: "Waterproof leather, a grippy sole and a padded collar for long days on rough ground." },
    { product_id: "lamp", sku: "LAMP-3", name: "Desk lamp", price: 48.0, category: "Home",
      text: "A warm, dimmable light on an arm that stays exactly where you put it." },
    { product_id: "scarf", sku: "SCARF-2", name: "Wool scarf", price: 35.0, category: "Clothing",
      text: "Merino, long enough to wrap twice, soft enough to forget you are wearing it." },
    { product_id: "backpack", sku: "PACK-4", name: "Canvas backpack", price: 79.0, category: "Outdoor",
      text: "Waxed canvas and leather straps, 22 litres, a padded sleeve for a laptop." },
    { product_id: "fern", sku: "FERN-9", name: "Potted fern", price: 24.0, category: "Home",
      text: "A Boston fern in a terracotta pot: happy in the shade, forgiving when you forget." }
  ];
  function find(id) {
    for (var i = 0; i < PRODUCTS.length; i++) if (PRODUCTS[i].product_id === id) return PRODUCTS[i];
    return null;
  }
  function imageUrl(p) { return origin + "/demo/static/products/" + p.product_id + ".svg"; }
  function productUrl(p) { return origin + "/demo/products/" + p.product_id; }
  // What the SDK's helpers and the abandoned-cart email use (triggers/abandoned_cart.yaml).
  function details(p) {
    return { product_id: p.product_id, sku: p.sku, name: p.name, price: p.price, category: p.category,
      url: productUrl(p), image_url: imageUrl(p) };
  }
  function euros(value) { return "€" + value.toFixed(2); }
  function escape(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // ---- the cart, kept in this browser (localStorage) --------------------------------------
  var CART = "demo.cart";
  function newCart() { return { id: "cart-" + Math.random().toString(36).slice(2, 10), items: [] }; }
  function cart() {
    try {
      var kept = JSON.parse(localStorage.getItem(CART));
      if (kept && kept.id && kept.items) return kept;
    } catch (e) { /* unreadable: a new cart */ }
    var fresh = newCart();
    saveCart(fresh);
    return fresh;
  }
  function saveCart(c) {
    try { localStorage.setItem(CART, JSON.stringify(c)); } catch (e) { /* private mode: this page only */ }
    showCount(c);
  }
  function count(c) { return c.items.reduce(function (n, item) { return n + item.quantity; }, 0); }
  function total(c) { return c.items.reduce(function (sum, item) { return sum + item.price * item.quantity; }, 0); }
  function showCount(c) { document.getElementById("cart-count").textContent = count(c); }
  function add(p) {
    var c = cart(), line = null;
    for (var i = 0; i < c.items.length; i++) if (c.items[i].product_id === p.product_id) line = c.items[i];
    if (line) line.quantity += 1;
    else c.items.push(merged(details(p), { quantity: 1 }));
    saveCart(c);
    send("productAdded", "Product Added", details(p), { cart_id: c.id, quantity: 1 });
    return c;
  }

  // ---- the pages --------------------------------------------------------------------------
  var view = document.getElementById("view");

  function card(p) {
    return '<div class="card product" data-product="' + p.product_id + '"><a href="/demo/products/' + p.product_id +
      '"><img src="' + imageUrl(p) + '" alt="' + escape(p.name) + '" width="400" height="300"><div class="meta">' +
      '<div class="category">' + escape(p.category) + "</div><h3>" + escape(p.name) + '</h3><div class="price">' +
      euros(p.price) + "</div></div></a></div>";
  }

  function catalogue() {
    nudge.page("Catalogue");
    view.innerHTML = "<h1>Catalogue</h1>" +
      '<div class="intro"><div><b>Try the abandoned cart</b>Add two products, sign in at checkout with any email, ' +
      "come back here and press <em>+1 day</em> in the panel (or <em>+2 days</em> if it says you are in the 48-hour " +
      'arm): the email lands in the panel\'s outbox.</div><div><b>Try the in-app offer</b>Stay on a product page ' +
      "for 30 seconds, moving the mouse now and then: an offer for that product appears on the page.</div></div>" +
      '<div class="grid">' + PRODUCTS.map(card).join("") + "</div>";
  }

  function productPage(p) {
    document.title = p.name + " · Nudge demo shop";
    nudge.page(p.name, { category: p.category });
    send("productViewed", "Product Viewed", details(p));
    var story = "";
    for (var i = 0; i < 5; i++) {
      story += "<p>" + escape(p.text) + " Made to last, easy to care for, repaired free for two years and sent " +
        "to you in plastic-free packaging. Questions? Our small team answers within a day.</p>";
    }
    var others = PRODUCTS.filter(function (o) { return o !== p; }).slice(0, 3);
    view.innerHTML = '<div class="hero"><img src="' + imageUrl(p) + '" alt="' + escape(p.name) +
      '" width="400" height="300"><div><div class="category">' + escape(p.category) + "</div><h1>" + escape(p.name) +
      '</h1><div class="price">' + euros(p.price) + "</div><p>" + escape(p.text) + "</p>" +
      '<button id="add">Add to cart</button> <span id="added" class="note"></span></div></div>' +
      '<div class="story">' + story + "</div>" +
      '<div class="related"><h3>You may also like</h3><div class="grid">' + others.map(card).join("") + "</div></div>";
    document.getElementById("add").onclick = function () {
      var c = add(p);
      document.getElementById("added").innerHTML = "Added to cart " + escape(c.id) +
        ' · <a href="/demo/cart">view cart</a>';
    };
  }

  function cartPage() {
    document.title = "Cart · Nudge demo shop";
    nudge.page("Cart");
    var c = cart();
    if (!c.items.length) {
      view.innerHTML = '<h1>Cart</h1><p>Your cart is empty. <a href="/demo">Browse the catalogue</a>.</p>';
      return;
    }
    view.innerHTML = "<h1>Cart</h1><table><tr><th></th><th>Product</th><th>Quantity</th><th>Price</th></tr>" +
      c.items.map(function (item) {
        return '<tr class="line"><td><img src="' + escape(item.image_url) + '" alt=""></td><td><a href="/demo/products/' +
          escape(item.product_id) + '">' + escape(item.name) + "</a></td><td>" + item.quantity + "</td><td>" +
          euros(item.price * item.quantity) + "</td></tr>";
      }).join("") + "<tr><th></th><th>Total</th><th></th><th>" + euros(total(c)) + "</th></tr></table>" +
      '<p class="note">Cart ' + escape(c.id) + '</p><p><a class="button" id="to-checkout" href="/demo/checkout">Checkout</a> ' +
      '<a class="button quiet" href="/demo">Keep shopping</a></p>';
  }

  function checkoutPage() {
    document.title = "Checkout · Nudge demo shop";
    nudge.page("Checkout");
    var c = cart();
    var order = { order_id: "order-" + c.id, cart_id: c.id, currency: "EUR", value: total(c), revenue: total(c),
      products: c.items };
    if (c.items.length) send("checkoutStarted", "Checkout Started", order);
    var signedIn = nudge.userId;
    view.innerHTML = "<h1>Checkout</h1>" +
      '<p class="note">No in-app offer ever shows on this page: the trigger excludes /checkout*.</p>' +
      '<div class="steps"><h3>1. Sign in</h3><p class="note">Any address: the email goes to the local outbox, ' +
      'not to the internet.</p><input id="email" type="email" placeholder="you@example.com" size="30" value="' +
      escape(signedIn || "") + '"> <button id="identify">Sign in</button> <span id="signed" class="ok">' +
      (signedIn ? "Signed in as " + escape(signedIn) : "") + "</span></div>" +
      '<div class="steps"><h3>2. Pay</h3><p>' + count(c) + " item(s), " + euros(total(c)) + "</p>" +
      '<button id="buy"' + (c.items.length ? "" : " disabled") + '>Place order</button> <span id="bought" class="ok"></span>' +
      '<p class="note">Or leave without paying (<a href="/demo">back to the catalogue</a>) and advance the clock in ' +
      "the panel: that is an abandoned cart.</p></div>";
    document.getElementById("identify").onclick = function () {
      var email = document.getElementById("email").value.trim();
      if (!email || email.indexOf("@") < 1) {
        document.getElementById("signed").textContent = "An email address, please";
        return;
      }
      var traits = { email: email, first_name: email.split("@")[0] };
      try { traits.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* no Intl */ }
      nudge.identify(email, traits);
      document.getElementById("signed").textContent = "Signed in as " + email;
      if (window.demoRefresh) window.demoRefresh();
    };
    document.getElementById("buy").onclick = function () {
      if (!c.items.length) return;
      send("orderCompleted", "Order Completed", order);
      saveCart(newCart());
      document.getElementById("buy").disabled = true;
      document.getElementById("bought").textContent = "Thank you! Order " + order.order_id + " placed.";
    };
  }

  var path = location.pathname.replace(/\/+$/, "");
  var match = /^\/demo\/products\/([\w-]+)$/.exec(path);
  if (match && find(match[1])) productPage(find(match[1]));
  else if (path === "/demo/cart") cartPage();
  else if (path.indexOf("/demo/checkout") === 0) checkoutPage();
  else catalogue();
  showCount(cart());

  // For panel.js: a new visitor with a new cart.
  window.demoStartOver = function () {
    if (typeof nudge.reset === "function") nudge.reset();
    saveCart(newCart());
    location.href = "/demo";
  };
})();

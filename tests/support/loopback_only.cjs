// Preloaded into Node.js servers under test (NODE_OPTIONS=--require): a server that listens
// without naming a host listens on 127.0.0.1 instead of every interface. supergateway has no
// option for its address, and the tests bind nothing but loopback.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || /^\d+$/.test(String(args[0]))) {
    if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
  } else if (args[0] && typeof args[0] === "object" && args[0].port !== undefined) {
    args[0] = { ...args[0], host: args[0].host || "127.0.0.1" };
  }
  return listen.apply(this, args);
};

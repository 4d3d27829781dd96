"use strict";
// minibroker's management page: RabbitMQ's JSON API, polled, shown as it answers.
// Rules: every number comes from the API unchanged (the rate chart plots the rates the API
// computed, poll after poll; the depth chart plots the API's own samples); text from the broker
// is only ever set as textContent; the credentials stay in this tab's sessionStorage.

const state = { auth: sessionStorage.getItem("minibroker-auth"), timer: null, page: null,
                rates: [] };
const RATE_SERIES = [["publish", "publish"], ["deliver_get", "deliver / get"], ["ack", "ack"]];
const DEPTH_SERIES = [["messages", "total"], ["messages_ready", "ready"],
                      ["messages_unacknowledged", "unacked"]];

// --- small helpers ----------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
const enc = encodeURIComponent;
const num = (value) => (value === undefined || value === null ? "" : String(value));
const rate = (details) => (details ? details.rate.toFixed(1) + "/s" : "");
const link = (href, text) => h("a", { href }, text);
const queueHref = (q) => `#/queues/${enc(q.vhost)}/${enc(q.name)}`;
const exchangeHref = (x) => `#/exchanges/${enc(x.vhost)}/${enc(x.name || "amq.default")}`;

function flags(item) {
  return [["durable", "D"], ["auto_delete", "AD"], ["exclusive", "Excl"], ["internal", "I"]]
    .filter(([key]) => item[key]).map(([key, text]) => h("span", { class: "tag", title: key }, text))
    .concat(Object.keys(item.arguments || {}).map((arg) => h("span", { class: "tag" }, arg)));
}

function table(columns, rows, empty) {
  if (!rows.length) return h("div", { class: "empty" }, empty || "none");
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([title, , cls]) => h("th", { class: cls }, title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell, cls]) =>
      h("td", { class: cls }, cell(row)))))));
}

function notice(text, bad) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.className = bad ? "notice bad" : "notice";
  box.hidden = !text;
  if (text && !bad) setTimeout(() => { if (box.textContent === text) box.hidden = true; }, 4000);
}

class ApiError extends Error {
  constructor(status, reason) { super(`${status}: ${reason}`); this.status = status; }
}

async function api(method, path, body) {
  const headers = { "X-Requested-With": "XMLHttpRequest" };
  if (state.auth) headers.Authorization = "Basic " + state.auth;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch("api" + path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (response.status === 401 && path !== "/whoami") showLogin();
  if (!response.ok) {
    const reason = data && data.reason !== undefined ? JSON.stringify(data.reason) : response.statusText;
    throw new ApiError(response.status, reason);
  }
  return { data, response };
}

async function act(what, action) {
  try {
    await action();
    notice(what);
    refresh();
  } catch (err) {
    notice(`${what} failed: ${err.message}`, true);
  }
}

function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function jsonField(text, what) {
  if (!text || !text.trim()) return {};
  try { return JSON.parse(text); } catch (err) { throw new Error(`${what} is not JSON`); }
}

// --- login ------------------------------------------------------------------------------------

function showLogin(message) {
  state.auth = null;
  sessionStorage.removeItem("minibroker-auth");
  document.getElementById("login").hidden = false;
  document.getElementById("page").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  document.getElementById("login-error").textContent = message || "";
}

async function login(event) {
  event.preventDefault();
  const { user, password } = formData(event.target);
  state.auth = btoa(unescape(encodeURIComponent(`${user}:${password}`)));
  try {
    const { data } = await api("GET", "/whoami");
    sessionStorage.setItem("minibroker-auth", state.auth);
    start(data.name);
  } catch (err) {
    showLogin(err.status === 401 ? "Login failed" : err.message);
  }
}

function start(user) {
  document.getElementById("login").hidden = true;
  document.getElementById("page").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("who").textContent = user;
  route();
}

// --- routing and refresh -----------------------------------------------------------------------
// A page is { mount(root), update() }: mount builds what stays (forms), update() fetches and
// replaces the live parts, on every refresh. pages.js defines them.

const pages = {};

function live(root) {
  const box = h("div");
  root.append(box);
  return (...nodes) => box.replaceChildren(...nodes);
}

function route() {
  if (!state.auth) { showLogin(); return; }
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [name, ...args] = parts.length ? parts : ["overview"];
  const key = args.length === 2 ? name.replace(/s$/, "") : name;
  const make = pages[key] || pages.overview;
  document.querySelectorAll("#nav a").forEach((a) =>
    a.classList.toggle("active", a.dataset.page === (pages[key] ? name : "overview")));
  const root = document.getElementById("page");
  root.replaceChildren();
  state.page = make(...args);
  state.page.mount(root);
  refresh();
}

async function refresh() {
  clearTimeout(state.timer);
  const page = state.page;
  if (!page || !state.auth) return;
  try {
    await page.update();
    if (document.getElementById("notice").classList.contains("bad")) notice("");
  } catch (err) {
    if (err.status !== 401) notice(`refresh failed: ${err.message}`, true);
  }
  const every = Number(document.getElementById("refresh").value);
  if (every && page === state.page) state.timer = setTimeout(refresh, every);
}

document.getElementById("login").addEventListener("submit", login);
document.getElementById("logout").addEventListener("click", () => showLogin());
document.getElementById("refresh").addEventListener("change", refresh);
window.addEventListener("hashchange", route);
window.addEventListener("resize", refresh);
window.addEventListener("DOMContentLoaded", () => {  // after pages.js has run
  if (state.auth) api("GET", "/whoami").then(({ data }) => start(data.name), () => showLogin());
  else showLogin();
});

// The REST API and the event stream of the ternd that served this page
// (docs/api.md). The session cookie is HttpOnly: the page never sees it;
// it keeps the CSRF token in memory and sends it with every change.

let csrf = "";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  let res;
  try {
    res = await fetch("/api/v1" + path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, `${method} ${path}: ${e.message}`);
  }
  let data = null;
  try { data = await res.json(); } catch { /* an empty or broken answer */ }
  if (!res.ok) {
    const msg = data && data.error ? data.error : `http ${res.status}`;
    throw new ApiError(res.status, msg, data);
  }
  return data;
}

export const get = (p) => call("GET", p);
export const post = (p, b) => call("POST", p, b === undefined ? {} : b);
export const del = (p) => call("DELETE", p);

export async function login(token) {
  const s = await call("POST", "/session", { token });
  csrf = s.csrf;
  return s;
}

// After a reload the cookie is still there: ask for the CSRF token again.
export async function resume() {
  const s = await get("/session");
  csrf = s.csrf;
  return s;
}

export async function logout() {
  try { await del("/session"); } finally { csrf = ""; }
}

// The cluster's events. EventSource resends Last-Event-ID by itself when
// it reconnects; a "resync" event means events were lost: reload state.
export function events(onEvent, onState) {
  const es = new EventSource("/api/v1/events", { withCredentials: true });
  es.onopen = () => onState(true);
  es.onerror = () => onState(false);
  es.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    onEvent(ev);
  };
  return es;
}

// Another stream of the API (a VM's console): each event's JSON to onData.
export function stream(path, onData) {
  const es = new EventSource("/api/v1" + path, { withCredentials: true });
  es.onmessage = (m) => {
    let d;
    try { d = JSON.parse(m.data); } catch { return; }
    onData(d);
  };
  return es;
}

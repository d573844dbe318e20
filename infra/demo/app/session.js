/*
 * Who is signed in, and the HTTP calls to the services.
 *
 * A page is opened as a guest, with `?token=<jwt>`, or (when the demo sign-in
 * is on) with `?as=<person>`, whose token the demo server issues afresh on
 * every load and refresh. A token that has expired, or that a service refuses
 * (401), ends the session: the page says so and keeps loading the public data
 * as a guest.
 */

const DEFAULT_PORTS = { gateway: 8000, posts: 8001, resources: 8002, goals: 8003, leaderboard: 8004, notifications: 8005 };

export const session = {
  ports: { ...DEFAULT_PORTS },
  signInAvailable: false,
  token: "",
  person: "",          // the ?as= key, when signed in through the demo sign-in
  me: { role: "guest", name: "guest" },
  expired: false,
  get signedIn() { return Boolean(this.token); },
  get isModerator() { return this.me.role === "instructor" || this.me.role === "admin"; },
  get isStudent() { return this.me.role === "student"; },
  get isMember() {
    return this.isModerator || (this.me.role === "student" && this.me.member !== false);
  },
};

const expiredListeners = [];

/** `fn()` runs once when the session ends (expired or refused token). */
export function onSessionEnd(fn) {
  expiredListeners.push(fn);
}

export function decodeToken(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

function useToken(token) {
  const claims = decodeToken(token);
  if (!claims || (claims.exp && claims.exp * 1000 <= Date.now())) {
    endSession();
    return;
  }
  session.token = token;
  session.me = claims;
}

/** The session is over: the page goes on as a guest and says why. */
export function endSession() {
  if (session.expired) return;
  session.token = "";
  session.me = { role: "guest", name: "guest" };
  session.expired = true;
  for (const fn of expiredListeners) fn();
}

export async function fetchDemoToken(person) {
  const response = await fetch(`dev/token?person=${encodeURIComponent(person)}`);
  if (!response.ok) throw new Error(`no demo person "${person}"`);
  return (await response.json()).token;
}

/** Read config.json and the URL; sign in if the URL says who. */
export async function startSession() {
  try {
    const config = await (await fetch("config.json")).json();
    session.ports = { ...DEFAULT_PORTS, ...config.ports };
    session.signInAvailable = Boolean(config.sign_in);
  } catch {
    // A plain static server: the default ports, no demo sign-in.
  }
  const params = new URLSearchParams(location.search);
  const person = params.get("as");
  const token = params.get("token");
  if (person && session.signInAvailable) {
    session.person = person;
    try {
      useToken(await fetchDemoToken(person));
    } catch {
      endSession();
    }
  } else if (token) {
    useToken(token);
  }
}

export function serviceUrl(service, path) {
  return `${location.protocol}//${location.hostname}:${session.ports[service]}${path}`;
}

export function gatewayUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:${session.ports.gateway}/ws`;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A JSON call to a service, with the session's token; a 401 ends the session (a GET is then retried as a guest). */
export async function api(service, path, { method = "GET", body } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const sentToken = session.token;
  if (sentToken) headers.Authorization = `Bearer ${sentToken}`;
  const response = await fetch(serviceUrl(service, path), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401 && sentToken) {
    endSession();
    if (method === "GET") return api(service, path);
  }
  if (!response.ok) {
    const detail = data && (data.detail || data.message);
    throw new ApiError(response.status, detail || `${response.status} ${response.statusText}`);
  }
  return data;
}

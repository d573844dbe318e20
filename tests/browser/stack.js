// The stack the pytest test started for the browser tests (its URLs come in
// the environment), and the people of a scenario: tokens signed like the
// services expect, goals set up over HTTP.
import { createHmac, randomUUID } from "node:crypto";

export const env = {
  demo: process.env.CL_DEMO_URL,
  posts: process.env.CL_POSTS_URL,
  goals: process.env.CL_GOALS_URL,
  leaderboard: process.env.CL_LEADERBOARD_URL,
  resources: process.env.CL_RESOURCES_URL,
  notifications: process.env.CL_NOTIFICATIONS_URL,
  secret: process.env.CL_JWT_SECRET,
  gatewayPort: Number(process.env.CL_GATEWAY_PORT),
  proxyPort: Number(process.env.CL_PROXY_PORT),
  screenshots: process.env.CL_SCREENSHOTS,
};

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

export function token({ role, name, sub = randomUUID(), ttl = 3600 }) {
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, role, name, iat: now, exp: now + ttl })}`;
  return `${body}.${createHmac("sha256", env.secret).update(body).digest("base64url")}`;
}

export async function call(service, method, path, jwt, body) {
  const response = await fetch(`${env[service]}${path}`, {
    method,
    headers: { Authorization: `Bearer ${jwt}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(data)}`);
  return data;
}

export function person(role, name) {
  const sub = randomUUID();
  return { sub, name, role, jwt: token({ role, name, sub }) };
}

/** A student whose goal an instructor approved (over HTTP): the goal card is active. */
export async function studentWithGoal(name, instructor, goal = "agency-3k") {
  const student = person("student", name);
  await call("goals", "PUT", "/goals/me/goal", student.jwt, { goal_slug: goal });
  const queue = await call("goals", "GET", "/goals/reviews?status=pending&limit=100", instructor.jwt);
  const request = queue.items.find((review) => review.student.id === student.sub);
  await call("goals", "POST", `/goals/reviews/${request.id}/approve`, instructor.jwt, {});
  return student;
}

export function pageUrl(who, extra = "") {
  return `${env.demo}/?token=${who.jwt}${extra}`;
}

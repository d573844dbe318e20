/*
 * The signed-in user's notifications, from the inbox the client keeps: the
 * history, the unread badge, and "read" once they have been on screen in a
 * visible tab for a moment (the gateway keeps the position for every tab and
 * the next visit).
 */
import { $, ago, el, fill, money } from "./dom.js";

const TEXT = {
  "submission.approved": (d) => `Your ${money(d.amount)} revenue proof was approved.`,
  "submission.rejected": (d) => `Your ${money(d.amount)} revenue proof was rejected: ${d.reason}`,
  "goal.assigned": (d) => `New goal: ${d.goal_name}.`,
  "goal.completed": (d) => `Goal completed: ${d.goal_name}!`,
  "goal.rejected": (d) => `Your goal request was rejected: ${d.reason}`,
  "badge.awarded": (d) => `Badge earned: ${d.badge}.`,
  "reply.received": (d) => `${d.author?.name || "Someone"} replied: “${d.content}”`,
  "like.received": (d) => `${d.user_name || "Someone"} liked your post.`,
  "story.published": (d) => `Your story “${d.title}” is published.`,
};

const READ_AFTER_MS = 1500;
let client = null;
let onScreen = false;
let timer = null;

function markReadWhenSeen() {
  clearTimeout(timer);
  if (!client || !onScreen || document.hidden || client.inbox.unread === 0) return;
  timer = setTimeout(() => client.inbox.markRead(), READ_AFTER_MS);
}

function render() {
  const { items, unread, readSeq } = client.inbox;
  const badge = $("inbox-count");
  badge.hidden = unread === 0;
  badge.textContent = `${unread} unread`;
  fill($("inbox"), [...items].reverse().slice(0, 50).map((note) =>
    el("li", { class: note.seq > readSeq ? "unread" : "", "data-type": note.type },
      (TEXT[note.type] || (() => note.type))(note.data),
      el("div", { class: "meta" }, ago(note.ts)))),
  client.inbox.ready ? "Nothing yet." : "Loading…");
  markReadWhenSeen();
}

export function setUpInbox(liveClient) {
  client = liveClient;
  client.inbox.onChange(render);
  render();
}

new IntersectionObserver(([entry]) => {
  onScreen = entry.isIntersecting;
  markReadWhenSeen();
}).observe($("inbox-section"));
document.addEventListener("visibilitychange", markReadWhenSeen);

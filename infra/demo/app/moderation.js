/*
 * Instructors and admins: the review queue (each item with the student's
 * goal, progress and previous submissions; approve, or reject with a reason
 * in a dialog), the alert when a proof arrives (a count in the tab title, a
 * sound that can be muted, a desktop notification when the tab is hidden and
 * the user allowed them), the reports queue and the stories queue.
 */
import { $, ago, ask, el, fill, flash, money } from "./dom.js";
import { api } from "./session.js";

const TITLE = document.title;
const reviews = new Map();     // review id -> review (pending only)
const known = new Set();       // every review id the page has shown: a proof is announced once
let reviewLoads = 0;           // the newest load of the queue renders
let reviewsLoaded = false;     // what the first load finds was there before the page: no alert
const context = new Map();     // student id -> Promise of their profile and history
let unseen = 0;
let audio = null;
let reportLoads = 0;           // the newest load of each queue renders, not a slower older one
let storyLoads = 0;

// ---------------------------------------------------------------- the alert

function setUnseen(count) {
  unseen = count;
  document.title = unseen ? `(${unseen}) ${TITLE}` : TITLE;
}

function beep() {
  if (!$("sound").checked || !audio) return;
  const oscillator = audio.createOscillator();
  const gain = audio.createGain();
  oscillator.frequency.value = 880;
  gain.gain.setValueAtTime(0.15, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
  oscillator.connect(gain).connect(audio.destination);
  oscillator.start();
  oscillator.stop(audio.currentTime + 0.4);
}

function alertArrival(review) {
  setUnseen(unseen + 1);
  beep();
  if (document.hidden && "Notification" in window && Notification.permission === "granted") {
    const what = review.kind === "revenue_submission"
      ? `${money(review.amount)} revenue proof` : `goal request (${review.goal_slug})`;
    new Notification("Community Live: new review", { body: `${review.student?.name}: ${what}`, tag: review.id });
  }
}

function setUpAlert() {
  const sound = $("sound");
  sound.checked = localStorage.getItem("cl-sound") !== "off";
  sound.addEventListener("change", () => localStorage.setItem("cl-sound", sound.checked ? "on" : "off"));
  // Browsers let a page play sound only after the user interacted with it.
  document.addEventListener("pointerdown", () => { audio ??= new AudioContext(); }, { once: true });
  const desktop = $("desktop-alerts");
  desktop.hidden = !("Notification" in window) || Notification.permission !== "default";
  desktop.addEventListener("click", async () => {
    await Notification.requestPermission();
    desktop.hidden = Notification.permission !== "default";
  });
  // Seen: the count goes once the moderator looks at the queue in a visible tab.
  $("reviews-section").addEventListener("pointerdown", () => setUnseen(0));
  $("reviews-section").addEventListener("focusin", () => setUnseen(0));
}

// ---------------------------------------------------------------- the review queue

function studentContext(studentId) {
  if (!context.has(studentId)) {
    context.set(studentId, api("goals", `/goals/students/${studentId}`).catch(() => null));
  }
  return context.get(studentId);
}

function contextNode(review) {
  const node = el("div", { class: "context" }, "Loading the student's goal…");
  studentContext(review.student.id).then((detail) => {
    if (!detail) {
      node.textContent = "No goal profile yet.";
      return;
    }
    const p = detail.profile;
    const previous = detail.history.filter((r) => r.kind === "revenue_submission" && r.id !== review.id);
    const approved = previous.filter((r) => r.status === "approved").length;
    const rejected = previous.filter((r) => r.status === "rejected").length;
    node.replaceChildren(
      el("div", {}, p.current_goal
        ? `Goal: ${p.current_goal.name} · ${money(p.progress?.amount)} of ${money(p.progress?.target)} (${Math.round(Number(p.progress?.percent ?? 0))}%)`
        : "No goal yet"),
      el("div", {}, previous.length
        ? `Previous submissions: ${approved} approved, ${rejected} rejected; last ${money(previous[0].amount)} ${previous[0].status} ${ago(previous[0].created_at)}`
        : "First submission"));
  });
  return node;
}

function renderReview(review) {
  const what = review.kind === "revenue_submission"
    ? `submitted ${money(review.amount)} toward ${review.goal_slug}`
    : `asks for the goal ${review.goal_slug}`;
  const node = el("article", { class: "review", "data-review": review.id },
    el("div", {}, el("b", {}, review.student?.name || "student"), " ", what),
    el("div", { class: "meta" },
      el("span", {}, review.track || ""), el("span", {}, `· ${ago(review.created_at)}`),
      review.proof_url ? el("a", { href: review.proof_url, target: "_blank", rel: "noopener noreferrer" }, "proof video") : null,
      review.note ? el("span", {}, `· “${review.note}”`) : null),
    contextNode(review),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "good", onclick: () => approve(review) }, "Approve"),
      el("button", { type: "button", class: "bad", onclick: () => reject(review) }, "Reject")),
    el("div", { class: "error", role: "alert" }));
  if (review.fresh) {
    review.fresh = false;
    return flash(node);
  }
  return node;
}

function renderReviews() {
  const items = [...reviews.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
  $("reviews-count").textContent = items.length ? `${items.length} pending` : "";
  fill($("reviews"), items.map(renderReview), "All caught up.");
}

/**
 * Loads the queue. After the first load, a proof the load finds that the page had not
 * shown is announced like a live one: it arrived while the channel was being subscribed
 * or while the page was offline, and its live event (if it comes) finds it already there.
 */
export async function loadReviews() {
  const load = ++reviewLoads;
  const page = await api("goals", "/goals/reviews?status=pending&limit=100");
  if (load !== reviewLoads) return;
  const arrived = reviewsLoaded ? page.items.filter((review) => !known.has(review.id)) : [];
  reviewsLoaded = true;
  reviews.clear();
  for (const review of page.items) {
    reviews.set(review.id, review);
    known.add(review.id);
  }
  for (const review of arrived) review.fresh = true;
  renderReviews();
  arrived.forEach(alertArrival);
}

function decided(review) {
  reviews.delete(review.id);
  context.delete(review.student.id);
  setUnseen(0);
  renderReviews();
}

async function approve(review) {
  try {
    await api("goals", `/goals/reviews/${review.id}/approve`, { method: "POST", body: {} });
    decided(review);
  } catch (error) {
    if (error.status === 409) decided(review);  // another moderator decided first
    else document.querySelector(`[data-review="${review.id}"] .error`).textContent = error.message;
  }
}

async function reject(review) {
  $("reject-what").textContent = `${review.student?.name}: ${review.kind === "revenue_submission"
    ? `${money(review.amount)} revenue proof` : `goal request ${review.goal_slug}`}`;
  const done = await ask($("reject-dialog"), async (form) => {
    const reason = String(form.get("reason") || "").trim();
    if (!reason) throw new Error("Say why: the student sees the reason.");
    try {
      return await api("goals", `/goals/reviews/${review.id}/reject`, { method: "POST", body: { reason } });
    } catch (error) {
      if (error.status === 409) return true;
      throw error;
    }
  });
  if (done) decided(review);
}

/** A `reviews` channel event. */
export function applyReviews(type, data, live = true) {
  if (type === "review.requested") {
    if (reviews.has(data.review_id)) return;
    const review = {
      id: data.review_id, kind: data.kind, student: data.student, track: data.track,
      goal_slug: data.goal_slug, amount: data.amount, proof_url: data.proof_url, note: data.note,
      created_at: data.created_at, fresh: true,
    };
    reviews.set(review.id, review);
    context.delete(review.student.id);
    const news = !known.has(review.id);
    known.add(review.id);
    if (live && news) alertArrival(review);
  } else if (type === "review.resolved") {
    reviews.delete(data.review_id);
  }
  renderReviews();
}

// ---------------------------------------------------------------- reports and stories

export async function loadReports() {
  const load = ++reportLoads;
  const page = await api("posts", "/reports?status=open&limit=50");
  if (load !== reportLoads) return;
  $("reports-count").textContent = page.items.length ? `${page.items.length} open` : "";
  fill($("reports"), page.items.map((report) => {
    const node = el("article", { class: "report", "data-report": report.id },
      el("div", { class: "meta" }, el("b", {}, report.reporter.name), `reported · ${report.reason}`, `· ${ago(report.created_at)}`),
      el("div", { class: "content" }, `${report.post.author.name}: ${report.post.content}`),
      report.details ? el("div", { class: "meta" }, `“${report.details}”`) : null,
      el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => resolveReport(report.id, "dismiss", node) }, "Dismiss"),
        el("button", { type: "button", class: "bad", onclick: () => resolveReport(report.id, "remove", node) }, "Remove post")),
      el("div", { class: "error", role: "alert" }));
    return node;
  }), "No open reports.");
}

/**
 * Resolve a report: it leaves the queue as soon as the service accepted it
 * (or another moderator resolved it first: 409); a refusal is shown on it.
 * The queue is then loaded again (removing a post resolves its other reports).
 */
async function resolveReport(reportId, action, node) {
  await settle(node, () => api("posts", `/reports/${reportId}/resolve`, { method: "POST", body: { action } }));
  await loadReports().catch((error) => console.warn(`posts: ${error.message}`));
}

/** A moderator's action on a queue item: on success (or 409) the item goes, otherwise it says why. */
async function settle(node, action) {
  const error = node.querySelector(".error");
  error.textContent = "";
  for (const button of node.querySelectorAll("button")) button.disabled = true;
  try {
    await action();
  } catch (failure) {
    if (failure.status !== 409) {
      error.textContent = failure.message;
      for (const button of node.querySelectorAll("button")) button.disabled = false;
      return false;
    }
  }
  node.remove();
  return true;
}

export async function loadStories() {
  const load = ++storyLoads;
  const page = await api("goals", "/goals/stories?status=pending&limit=50");
  if (load !== storyLoads) return;
  fill($("stories"), page.items.map((story) => {
    const node = el("article", { class: "story", "data-story": story.id },
      el("b", {}, story.title), el("div", { class: "meta" },
        story.author_name, story.earnings_amount ? `· ${money(story.earnings_amount)}` : null,
        story.anonymous ? "· anonymous" : null),
      el("div", { class: "content" }, story.story),
      el("div", { class: "actions" }, el("button", { type: "button", class: "good", onclick: async () => {
        await settle(node, () => api("goals", `/goals/stories/${story.id}/publish`, { method: "POST", body: {} }));
        await loadStories().catch((error) => console.warn(`goals: ${error.message}`));
      } }, "Publish")),
      el("div", { class: "error", role: "alert" }));
    return node;
  }), "No story waits for verification.");
}

export function setUpModeration() {
  setUpAlert();
}

/*
 * The student's side: the goal card (track, current goal, progress, completed
 * goals), choosing a goal, the revenue-proof form and its button, and the
 * history of submissions. Reloaded whenever the student's own channel says a
 * review was decided or a goal changed.
 */
import { $, ago, ask, el, fill, money } from "./dom.js";
import { api } from "./session.js";

const STATE_LABEL = { pending: "under review", approved: "approved", rejected: "rejected" };
let tracks = [];
let profile = null;

function goalName(slug) {
  for (const track of tracks) for (const goal of track.goals) if (goal.slug === slug) return goal.name;
  return slug;
}

function chooser(current) {
  const select = el("select", { id: "goal-choice", name: "goal_slug", required: true },
    el("option", { value: "" }, "Pick a goal…"),
    tracks.map((track) => el("optgroup", { label: track.name },
      track.goals.map((goal) => el("option", { value: goal.slug, selected: goal.slug === current }, goal.name)))));
  const error = el("div", { class: "error", role: "alert" });
  return el("form", { class: "filters", onsubmit: async (event) => {
    event.preventDefault();
    try {
      profile = await api("goals", "/goals/me/goal", { method: "PUT", body: { goal_slug: select.value } });
      render();
    } catch (failure) {
      error.textContent = failure.message;
    }
  } },
  el("label", { for: "goal-choice" }, "Goal"), select,
  el("button", { class: "primary" }, "Request this goal"), error);
}

function goalCard() {
  const p = profile;
  const track = tracks.find((t) => t.slug === p.track);
  const parts = [el("div", { class: "meta" }, track ? `${track.name} track` : "No track yet")];
  if (p.current_goal) {
    const percent = Math.round(Number(p.progress?.percent ?? 0));
    parts.push(
      el("h3", { class: "goal-name" }, p.current_goal.name,
        p.goal_status === "completed" ? el("span", { class: "verified" }, " ✓ completed") : null),
      el("div", { class: "progress", role: "progressbar", "aria-label": "Progress toward the goal",
        "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(percent) },
      el("div", { style: `width: ${Math.min(100, percent)}%` })),
      el("div", { class: "figures" },
        el("span", { class: "amount" }, `${money(p.progress?.amount)} of ${money(p.progress?.target ?? p.current_goal.target)}`),
        el("b", { class: "percent" }, `${percent}%`)));
  }
  if (p.goal_status === "pending_approval") {
    parts.push(el("p", { class: "pending" }, "Your goal request is pending an instructor's approval."));
  } else if (p.goal_status === "none" || !p.current_goal) {
    parts.push(el("p", {}, "Choose the goal you are working toward; an instructor approves it."), chooser());
  }
  if (p.completed_goals?.length) {
    parts.push(el("h3", {}, "Completed goals"), el("ul", {},
      p.completed_goals.map((g) => el("li", {}, `${goalName(g.slug)} · ${money(g.amount)}`,
        g.days_to_complete != null ? ` in ${g.days_to_complete} days` : ""))));
  }
  return el("div", { class: "goal-card" }, parts);
}

function proofArea() {
  const p = profile;
  if (!p.current_goal || p.goal_status === "pending_approval" || p.goal_status === "none") return [];
  const button = (label) => el("button", { type: "button", class: "primary", id: "proof-button", onclick: openProofForm }, label);
  switch (p.submission_state) {
    case "pending":
      return [el("div", { class: "proof-state" },
        el("button", { type: "button", id: "proof-button", disabled: true }, "Under Review"),
        el("span", { class: "pending" }, "An instructor will review your proof."))];
    case "approved":
      return [el("div", { class: "proof-state" },
        el("span", { class: "verified", id: "last-verified" }, `✓ Last verified: ${money(p.last_verified_amount)}`),
        button("Update Revenue"))];
    case "rejected":
      return [el("div", { class: "proof-state" }, button("Submit Revenue Proof")),
        el("p", { class: "rejected", id: "rejection" }, `Your last proof was rejected: ${p.rejection_reason}`)];
    default:
      return [el("div", { class: "proof-state" }, button("Submit Revenue Proof"))];
  }
}

async function openProofForm() {
  const submitted = await ask($("proof-dialog"), async (form) => {
    const note = String(form.get("note") || "").trim();
    return api("goals", "/goals/me/submissions", {
      method: "POST",
      body: { amount: String(form.get("amount")), proof_url: String(form.get("proof_url")).trim(), ...(note ? { note } : {}) },
    });
  });
  if (submitted) {
    profile = { ...profile, submission_state: "pending" };
    render();
    await refreshStudent();
  }
  $("proof-button")?.focus();
}

async function loadSubmissions() {
  const page = await api("goals", "/goals/me/submissions");
  fill($("submissions"), page.items.map((s) => el("li", { class: s.status },
    `${money(s.amount)} · ${STATE_LABEL[s.status] || s.status} · ${ago(s.created_at)}`,
    s.rejection_reason ? ` — “${s.rejection_reason}”` : "")), "No submissions yet.");
}

function render() {
  $("goal-card").replaceChildren(goalCard());
  $("proof-area").replaceChildren(...proofArea());
}

export async function refreshStudent() {
  if (!tracks.length) tracks = (await api("goals", "/goals/tracks")).items;
  const [me] = await Promise.all([api("goals", "/goals/me"), loadSubmissions()]);
  profile = me;
  render();
}

const STUDENT_EVENTS = new Set([
  "submission.approved", "submission.rejected", "goal.assigned", "goal.completed", "goal.rejected",
]);

/** A notification of the student's own channel: reload when it concerns the goal card. */
export function applyStudentEvent(type) {
  if (STUDENT_EVENTS.has(type)) return refreshStudent();
  return null;
}

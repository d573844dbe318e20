/*
 * What everyone sees beside the feed: the leaderboard (window, track and sort;
 * live from `top.changed` and `rank.changed`; the signed-in student's own
 * standing and neighbours), community stats with a chart, the activity
 * ticker, who is online, and the resource library.
 */
import { $, ago, debounce, el, fill, flash, money } from "./dom.js";
import { api, session } from "./session.js";

const BOARD_SIZE = 20;
const TRACKS = { agency: "Agency", saas: "SaaS" };

// ---------------------------------------------------------------- leaderboard

function boardQuery() {
  const form = $("board-filters");
  return { window: form.window.value, track: form.track.value, sort: form.sort.value };
}

function earned(row) {
  return row.earned == null ? (row.earnings_range || "—") : money(row.earned);
}

function boardRow(row, fresh) {
  const node = el("tr", { class: row.user_id === session.me.sub ? "me" : "", "data-user": row.user_id },
    el("td", {}, row.rank),
    el("td", {}, row.name, " ", (row.badges || []).map((badge) => el("span", { class: "tag" }, badge)),
      el("div", { class: "sub" }, [row.track ? TRACKS[row.track] || row.track : null, row.goal?.name].filter(Boolean).join(" · "))),
    el("td", { class: "num points" }, row.points),
    el("td", { class: "num earned" }, earned(row)));
  return fresh ? flash(node) : node;
}

let shown = new Map();  // user id -> "points|earned|rank" on screen, to flash what changed

function renderBoard(items) {
  const next = new Map(items.map((row) => [row.user_id, `${row.points}|${earned(row)}|${row.rank}`]));
  const rows = items.map((row) => boardRow(row, shown.size > 0 && shown.get(row.user_id) !== next.get(row.user_id)));
  shown = next;
  $("board").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 4, class: "empty" }, "No students ranked yet."))]));
}

let boardAsked = 0;

export async function loadBoard() {
  const asked = ++boardAsked;
  const { window, track, sort } = boardQuery();
  const page = await api("leaderboard", `/leaderboard?window=${window}&track=${track}&sort=${sort}&limit=${BOARD_SIZE}`);
  // An answer that comes after a newer selection's request is not shown.
  if (asked === boardAsked) renderBoard(page.items);
}

function standingRow(row) {
  return el("li", { class: row.user_id === session.me.sub ? "me" : "" }, `#${row.rank} ${row.name} · ${row.points} pts`);
}

export async function loadStanding() {
  if (!session.isStudent) return;
  let me;
  try {
    me = await api("leaderboard", "/leaderboard/me");
  } catch {
    $("my-standing").replaceChildren(el("p", { class: "prompt" }, "You join the board with your first post, like or submission."));
    return;
  }
  const { window, track } = boardQuery();
  const rank = me.ranks[`${window}:${track}`] ?? me.rank;
  $("my-standing").replaceChildren(el("div", { class: "prompt", id: "standing" },
    el("b", {}, rank ? `You are #${rank}` : "You are not on this board"),
    ` · ${me.points} points · ${money(me.earned)} earned`,
    me.neighbors.above.length || me.neighbors.below.length
      ? el("ol", { class: "neighbours", "aria-label": "Your neighbours on the all-time board" },
        me.neighbors.above.filter((row) => row.user_id !== session.me.sub).map(standingRow), el("li", { class: "me" }, `#${me.rank} you`), me.neighbors.below.map(standingRow))
      : null));
}

const refreshBoard = debounce(() => loadBoard().catch(() => {}), 300);
const refreshStandingSoon = debounce(() => loadStanding().catch(() => {}), 300);
// The standing is read from the service's tables, which may trail its boards
// by a moment: read it again a little later.
const refreshStandingLater = debounce(() => loadStanding().catch(() => {}), 2000);
function refreshStanding() {
  refreshStandingSoon();
  refreshStandingLater();
}

// ---------------------------------------------------------------- stats, chart, activity

function bars(title, entries, format = String) {
  const max = Math.max(1, ...entries.map(([, value]) => value));
  return el("figure", { class: "bars", "aria-label": title },
    el("figcaption", { class: "meta" }, title),
    entries.map(([label, value]) => el("div", { class: "bar" },
      el("span", {}, label),
      el("div", { class: "track" }, el("div", { class: "fill", style: `width: ${(100 * value) / max}%` })),
      el("span", { class: "num" }, format(value)))));
}

function renderStats(stats) {
  const tiles = [
    [stats.total_students, "students"],
    [stats.active_this_week, "active this week"],
    [money(stats.total_earnings), "earned together"],
    [stats.average_learn_rate == null ? "—" : Number(stats.average_learn_rate).toFixed(1), "avg learn rate (min/h)"],
  ];
  $("stats").replaceChildren(...tiles.map(([value, label]) =>
    el("div", { class: "stat" }, el("b", {}, value ?? "—"), el("span", {}, label))));
  const byTrack = Object.entries(stats.students_by_track || {}).map(([track, count]) => [TRACKS[track] || track, count]);
  $("stats-chart").replaceChildren(bars("Students by track", byTrack));
}

export async function loadStats() {
  renderStats(await api("leaderboard", "/leaderboard/stats"));
}

let activity = [];

function renderActivity() {
  fill($("activity"), activity.slice(0, 30).map((item) => {
    const node = el("li", { class: "act" }, el("b", {}, item.name), " ",
      item.text.replace(item.name, "").trim() || item.type, el("div", { class: "meta" }, ago(item.occurred_at)));
    if (item.fresh) {
      item.fresh = false;
      return flash(node);
    }
    return node;
  }), "Quiet so far.");
}

export async function loadActivity() {
  activity = (await api("leaderboard", "/leaderboard/activity?limit=30")).items;
  renderActivity();
}

/** A `leaderboard` or `activity` channel event. */
export function applyCommunity(channel, type, data) {
  if (channel === "activity") {
    if (activity.some((item) => item.id === data.id)) return;
    activity.unshift({ ...data, fresh: true });
    activity.length = Math.min(activity.length, 50);
    renderActivity();
    return;
  }
  const { window, track, sort } = boardQuery();
  if (type === "stats.updated") renderStats(data);
  else if (type === "top.changed") {
    // The first page of a board, whole, whenever anything on it changed.
    if (data.board === `${window}:${track}` && sort === "rank") renderBoard(data.items.slice(0, BOARD_SIZE));
    else if (sort !== "rank") refreshBoard();
    refreshStanding();
  } else if (type === "rank.changed") {
    if (data.user_id === session.me.sub) refreshStanding();
    if (sort !== "rank") refreshBoard();
  }
}

// ---------------------------------------------------------------- presence

export function showPresence(presence) {
  const { online, guests, members, names } = presence;
  const people = names ? [...members.values()].slice(0, 8).map((m) => m.name) : [];
  $("presence").replaceChildren(
    el("b", {}, `${online} online`), `, ${guests} ${guests === 1 ? "guest" : "guests"}`,
    people.length ? ` · ${people.join(", ")}${members.size > people.length ? "…" : ""}` : "");
}

// ---------------------------------------------------------------- resources

async function download(resource, status) {
  try {
    const { url } = await api("resources", `/resources/${resource.id}/download`, { method: "POST", body: {} });
    status.replaceChildren(el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, "Open the file"),
      " · you can rate it now.");
    resource.downloaded = true;
  } catch (error) {
    status.textContent = error.status === 401 ? "Sign in to download." : error.message;
  }
}

async function rate(resource, rating, status) {
  try {
    const result = await api("resources", `/resources/${resource.id}/rating`, { method: "PUT", body: { rating: Number(rating) } });
    status.textContent = `Thanks: ${Number(result.rating_average).toFixed(1)} ★ from ${result.rating_count}.`;
  } catch (error) {
    status.textContent = error.status === 409 ? "Download it before rating it." : error.message;
  }
}

function renderResource(resource) {
  const status = el("span", { class: "meta", role: "status" });
  const select = el("select", { "aria-label": `Rate ${resource.title}` },
    el("option", { value: "" }, resource.my_rating ? `Your rating: ${resource.my_rating}` : "Rate…"),
    [1, 2, 3, 4, 5].map((n) => el("option", { value: n }, "★".repeat(n))));
  select.addEventListener("change", () => select.value && rate(resource, select.value, status));
  return el("article", { class: "resource" },
    el("b", {}, resource.title), " ",
    resource.is_featured ? el("span", { class: "tag pin" }, "featured") : null,
    resource.is_new ? el("span", { class: "tag" }, "new") : null,
    resource.access === "members" ? el("span", { class: "tag members" }, "members") : null,
    el("div", { class: "meta" }, `${resource.type} · ${resource.category}`,
      `· ${resource.download_count} downloads`,
      resource.rating_count ? `· ${Number(resource.rating_average).toFixed(1)} ★ (${resource.rating_count})` : "· not rated yet"),
    resource.description ? el("div", { class: "content" }, resource.description) : null,
    el("div", { class: "actions" },
      el("button", { type: "button", disabled: !session.signedIn, title: session.signedIn ? "" : "Sign in to download",
        onclick: () => download(resource, status) }, "Download"),
      session.signedIn ? select : null, status));
}

let resourcesAsked = 0;

export async function loadResources() {
  const asked = ++resourcesAsked;
  const form = $("resource-filters");
  const params = new URLSearchParams({ sort: form.sort.value, limit: "10" });
  if (form.category.value) params.set("category", form.category.value);
  if (form.type.value) params.set("type", form.type.value);
  const page = await api("resources", `/resources?${params}`);
  // The page's first load may answer after a filter's: the newest request's answer stays.
  if (asked !== resourcesAsked) return;
  fill($("resources"), page.items.map(renderResource), "No resource matches.");
}

export function setUpCommunity(onError) {
  $("board-filters").addEventListener("change", () => {
    loadBoard().catch(onError);
    loadStanding().catch(onError);
  });
  $("resource-filters").addEventListener("change", () => loadResources().catch(onError));
}

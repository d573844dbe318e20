/*
 * The demo app: signs in (or not), loads every panel over HTTP, then keeps
 * them current through the JavaScript client (clients/js, served at
 * client/), which speaks the gateway's protocol: reconnects, recovers what a
 * cut connection missed (each event once, in order), keeps the inbox and
 * presence. When the history no longer reaches back (`onGap`), a panel
 * reloads over HTTP.
 */
import { CommunityClient } from "../client/index.js";
import { $, el } from "./dom.js";
import {
  endSession, fetchDemoToken, gatewayUrl, onSessionEnd, session, startSession,
} from "./session.js";
import { applyFeed, loadFeed, setUpFeed } from "./feed.js";
import { applyStudentEvent, refreshStudent } from "./student.js";
import { applyReviews, loadReports, loadReviews, loadStories, setUpModeration } from "./moderation.js";
import {
  applyCommunity, loadActivity, loadBoard, loadResources, loadStanding, loadStats,
  setUpCommunity, showPresence,
} from "./community.js";
import { setUpInbox } from "./inbox.js";
import { setUpPush } from "./webpush.js";

let client = null;

// ---------------------------------------------------------------- panels

const PANELS = {
  feed: { load: loadFeed, node: "feed", service: "posts" },
  leaderboard: { load: () => Promise.all([loadBoard(), loadStats(), loadStanding()]), node: "board-section", service: "leaderboard" },
  activity: { load: loadActivity, node: "activity", service: "leaderboard" },
  reviews: { load: loadReviews, node: "reviews", service: "goals" },
};

function showLoadError(node, service) {
  return (error) => {
    console.warn(`${service}: ${error.message}`);
    const target = $(node);
    target.querySelector(".load-error")?.remove();
    target.prepend(el("p", { class: "error load-error" }, `The ${service} service did not answer (${error.message}); retrying with the next update.`));
  };
}

function reload(channel) {
  const panel = PANELS[channel];
  if (panel) panel.load().catch(showLoadError(panel.node, panel.service));
}

function loadEverything() {
  const channels = ["feed", "leaderboard", "activity", ...(session.isModerator ? ["reviews"] : [])];
  channels.forEach(reload);
  loadResources().catch(showLoadError("resources", "resources"));
  if (session.isStudent) refreshStudent().catch(showLoadError("goal-card", "goals"));
  if (session.isModerator) {
    loadReports().catch(showLoadError("reports", "posts"));
    loadStories().catch(showLoadError("stories", "goals"));
  }
  return channels;
}

function showPanels() {
  const who = session.signedIn ? `${session.me.name} · ${session.me.role}` : "Guest (read only)";
  $("who").textContent = who;
  $("signout").hidden = !session.signedIn;
  $("student-section").hidden = !session.isStudent;
  $("reviews-section").hidden = !session.isModerator;
  $("reports-section").hidden = !session.isModerator;
  $("stories-section").hidden = !session.isModerator;
  $("inbox-section").hidden = !session.signedIn;
  $("composer").hidden = !session.isMember;
  $("feed-signin").hidden = session.signedIn;
  $("filter-mine").hidden = !session.signedIn;
}

// ---------------------------------------------------------------- sign-in

async function setUpSignIn() {
  if (!session.signInAvailable) return;
  const people = (await (await fetch("dev/people")).json()).items;
  const roles = ["student", "instructor", "admin"];
  if (session.signedIn) {
    $("signin").querySelector("label").textContent = "Switch to";
    $("signin").querySelector("button").textContent = "Switch";
  }
  const placeholder = session.signedIn && !session.person
    ? [el("option", { value: "", disabled: true, selected: true }, "Pick a person")] : [];
  $("person").replaceChildren(
    ...placeholder,
    el("option", { value: "" }, "Guest"),
    ...roles.map((role) => el("optgroup", { label: role[0].toUpperCase() + role.slice(1) + "s" },
      people.filter((p) => p.role === role).map((p) => el("option", {
        value: p.key, selected: p.key === session.person,
      }, p.track ? `${p.name} (${p.track})` : p.name)))));
  $("signin").hidden = false;
  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    const person = $("person").value;
    location.search = person ? `?as=${encodeURIComponent(person)}` : "";
  });
}

function sessionExpired() {
  const banner = $("banner");
  banner.replaceChildren("Your session has expired — sign in again. ",
    session.signInAvailable ? "Pick a person above, or " : "Open the page with a fresh link, or ",
    el("a", { href: "./" }, "continue as a guest"), ".");
  banner.hidden = false;
  showPanels();
}

// ---------------------------------------------------------------- connection

function inWords({ state, code, retryInMs }) {
  if (state === "open") return "Live";
  if (state === "connecting") return "Connecting…";
  if (state === "closed") return "Offline";
  if (typeof navigator !== "undefined" && navigator.onLine === false) return "Offline — no network";
  const why = {
    1001: "the server is restarting", 1012: "the server is restarting",
    4008: "catching up after falling behind", 4401: "renewing the sign-in",
  }[code] || (code === 1006 || code == null ? "the connection was lost" : "the connection closed");
  const wait = retryInMs > 1500 ? `, next try in ${Math.round(retryInMs / 1000)} s` : "";
  return `Reconnecting — ${why}${wait}`;
}

function showConnection(change) {
  const node = $("status");
  node.textContent = inWords(change);
  node.className = `status ${change.state === "open" ? "live" : change.state === "closed" ? "down" : "wait"}`;
}

function goLive(channels) {
  const auth = !session.signedIn ? {}
    : session.person ? {
      getToken: async () => {
        if (session.expired) return null;
        session.token = await fetchDemoToken(session.person);
        return session.token;
      },
    } : { token: session.token };
  client = new CommunityClient({ url: gatewayUrl(), ...auth });
  client.onState((change) => {
    if (change.state === "unauthorized") endSession();
    else showConnection(change);
  });
  for (const channel of channels) {
    const subscription = client.subscribe(channel, onEvent, {
      onGap: () => reload(channel),
      onError: (error) => console.warn(`${channel}: ${error.code} ${error.message}`),
    });
    // Events published between the HTTP load and the subscription are in
    // neither: load once more when the channel is live.
    subscription.ready.then(({ error }) => { if (!error) reload(channel); });
  }
  if (session.signedIn && session.me.sub) {
    setUpInbox(client);
    client.subscribe(`user:${session.me.sub}`, ({ type }) => {
      if (session.isStudent) applyStudentEvent(type)?.catch(() => {});
    });
  }
  client.presence.onChange(() => showPresence(client.presence));
  client.connect();
}

function onEvent({ channel, type, data }) {
  if (channel === "feed") applyFeed(type, data);
  else if (channel === "reviews") applyReviews(type, data);
  else applyCommunity(channel, type, data);
}

// ---------------------------------------------------------------- links

// Where a notification leads (sw.js): `#review=<id>` (the item in the review
// queue), `#goal` (the student's goal card), `#post=<id>`. The panels load
// over the network, so the target is looked for until it is there (10 s).
function showLinked() {
  const hash = decodeURIComponent(location.hash.slice(1));
  const [kind, id] = hash.split("=");
  const selector = {
    review: id && `[data-review="${CSS.escape(id)}"]`,
    post: id && `[data-post="${CSS.escape(id)}"]`,
    goal: "#student-section",
  }[kind];
  if (!selector) return;
  const until = Date.now() + 10_000;
  const look = () => {
    const target = document.querySelector(selector);
    if (!target || target.hidden) {
      if (Date.now() < until) setTimeout(look, 100);
      return;
    }
    target.classList.add("linked");
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.scrollIntoView({ block: "start" });
    target.focus({ preventScroll: true });
  };
  look();
}

// ---------------------------------------------------------------- start

async function start() {
  await startSession();
  if (session.expired) sessionExpired();
  onSessionEnd(() => {
    // Refused mid-way: go on as a guest, public data included.
    sessionExpired();
    client?.close();
    goLive(loadEverything());
  });
  showPanels();
  setUpFeed(showLoadError("feed", "posts"));
  setUpCommunity(showLoadError("board-section", "leaderboard"));
  if (session.isModerator) setUpModeration();
  setUpPush();
  setUpSignIn().catch(() => {});
  goLive(loadEverything());
  window.addEventListener("hashchange", showLinked);
  showLinked();
}

start();

/*
 * The feed: posts with their threads, likes, filters (all / instructors /
 * mine), search, older posts on scroll, the composer for members. Loaded over
 * HTTP, then kept current from the `feed` channel.
 */
import { $, ago, el, fill, flash } from "./dom.js";
import { api, session } from "./session.js";

const PAGE = 20;
const state = {
  posts: new Map(),      // id -> post, in the order shown
  threads: new Map(),    // post id -> replies (flat, oldest first), for open threads
  cursor: null,
  loading: false,
  filter: "all",
  q: "",
  generation: 0,         // drops answers of a load that a newer one replaced
};

function upsert(post, fresh) {
  const known = state.posts.get(post.id);
  const merged = { ...known, ...post, fresh };
  // An event says nothing about the viewer's own like; keep what we know.
  merged.liked_by_me = post.liked_by_me ?? known?.liked_by_me ?? false;
  if (!post.author?.goal && known?.author?.goal) merged.author = { ...post.author, goal: known.author.goal };
  state.posts.set(post.id, merged);
}

function sorted() {
  return [...state.posts.values()].sort((a, b) =>
    (b.is_pinned - a.is_pinned) || b.created_at.localeCompare(a.created_at));
}

function authorLine(author, when, extra = []) {
  return el("div", { class: "meta" },
    el("span", { class: "author" }, author?.name || "someone"),
    author?.role && author.role !== "student" ? el("span", { class: "tag" }, author.role) : null,
    author?.goal ? el("span", { class: "tagline" }, `· ${author.goal}`) : null,
    el("span", {}, `· ${ago(when)}`),
    ...extra);
}

function renderReplies(postId) {
  const replies = state.threads.get(postId) || [];
  const children = new Map();
  for (const reply of replies) {
    const parent = reply.reply_to_id || "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(reply);
  }
  const branch = (parent) => (children.get(parent) || []).map((reply) =>
    el("div", { class: "reply", "data-reply": reply.id },
      authorLine(reply.author, reply.created_at, [reply.edited ? el("span", {}, "· edited") : null]),
      el("div", { class: "content" }, reply.content),
      session.isMember ? el("button", { type: "button", class: "link", onclick: () => openReplyForm(postId, reply.id) }, "Reply") : null,
      openForms.has(reply.id) ? replyForm(postId, reply.id) : null,
      children.has(reply.id) ? el("div", { class: "thread" }, branch(reply.id)) : null));
  return el("div", { class: "thread" },
    branch(""),
    replies.length ? null : el("p", { class: "empty" }, "No replies yet."),
    session.isMember ? replyForm(postId, null) : null);
}

// What is typed in reply boxes survives the re-renders that live events cause.
const drafts = new Map();  // "post id/reply id" -> text
const openForms = new Set();  // reply ids with an open "reply to this reply" box

function replyForm(postId, replyTo) {
  const key = `${postId}/${replyTo || ""}`;
  const input = el("input", { name: "content", required: true, maxlength: 5000, "data-draft": key,
    "aria-label": replyTo ? "Your reply to this reply" : "Your reply", placeholder: "Write a reply…",
    oninput: (event) => drafts.set(key, event.target.value) });
  input.value = drafts.get(key) || "";
  return el("form", { class: "reply-form", onsubmit: async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const reply = await api("posts", `/posts/${postId}/replies`, {
        method: "POST", body: { content: input.value, ...(replyTo ? { reply_to_id: replyTo } : {}) },
      });
      drafts.delete(key);
      openForms.delete(replyTo);
      input.value = "";
      addReply(postId, reply);
    } catch (error) {
      input.setCustomValidity(error.message);
      input.reportValidity();
      input.setCustomValidity("");
    } finally {
      button.disabled = false;
    }
  } }, input, el("button", { class: "primary" }, "Reply"));
}

function openReplyForm(postId, replyId) {
  openForms.add(replyId);
  renderFeed();
  document.querySelector(`[data-draft="${postId}/${replyId}"]`)?.focus();
}

function renderPost(post) {
  const liked = post.liked_by_me;
  const open = state.threads.has(post.id);
  const node = el("article", { class: "post", "data-post": post.id },
    authorLine(post.author, post.created_at, [
      post.edited ? el("span", {}, "· edited") : null,
      post.is_pinned ? el("span", { class: "tag pin" }, "pinned") : null,
      post.visibility === "members" ? el("span", { class: "tag members" }, "members") : null]),
    el("div", { class: "content" }, post.content),
    el("div", { class: "actions" },
      el("button", {
        type: "button", class: liked ? "like liked" : "like", disabled: !session.isMember,
        "aria-pressed": String(Boolean(liked)),
        "aria-label": `${liked ? "Unlike" : "Like"} (${post.likes_count ?? 0} likes)`,
        title: session.isMember ? "" : "Members can like",
        onclick: () => toggleLike(post.id),
      }, `${liked ? "♥" : "♡"} ${post.likes_count ?? 0}`),
      el("button", {
        type: "button", class: "replies", "aria-expanded": String(open),
        onclick: () => toggleThread(post.id),
      }, `${post.replies_count ?? 0} ${post.replies_count === 1 ? "reply" : "replies"}`)),
    open ? renderReplies(post.id) : null);
  if (post.fresh) {
    post.fresh = false;
    return flash(node);
  }
  return node;
}

export function renderFeed() {
  const focused = document.activeElement?.dataset?.draft;
  fill($("feed"), sorted().map(renderPost),
    state.q ? "No post matches the search." : "No posts yet.");
  if (focused) document.querySelector(`[data-draft="${focused}"]`)?.focus();
  $("feed-more").textContent = state.cursor ? "Scroll for older posts" : (state.posts.size ? "That is everything." : "");
}

function query(cursor) {
  const params = new URLSearchParams({ limit: String(PAGE), filter: state.filter });
  if (state.q) params.set("q", state.q);
  if (cursor) params.set("cursor", cursor);
  return `/posts?${params}`;
}

/** (Re)load the first page with the current filter and search. */
export async function loadFeed() {
  const generation = ++state.generation;
  const page = await api("posts", query(null));
  if (generation !== state.generation) return;
  state.posts.clear();
  page.items.forEach((post) => upsert(post, false));
  state.cursor = page.next_cursor;
  renderFeed();
  for (const postId of state.threads.keys()) loadThread(postId);
}

async function loadOlder() {
  if (!state.cursor || state.loading) return;
  state.loading = true;
  const generation = state.generation;
  try {
    const page = await api("posts", query(state.cursor));
    if (generation !== state.generation) return;
    page.items.forEach((post) => upsert(post, false));
    state.cursor = page.next_cursor;
    renderFeed();
  } finally {
    state.loading = false;
  }
}

async function loadThread(postId) {
  const post = await api("posts", `/posts/${postId}`);
  state.threads.set(postId, post.replies);
  upsert({ ...post, replies: undefined }, false);
  renderFeed();
}

function toggleThread(postId) {
  if (state.threads.has(postId)) {
    state.threads.delete(postId);
    renderFeed();
  } else {
    state.threads.set(postId, []);
    renderFeed();
    loadThread(postId).catch(() => {});
  }
}

function addReply(postId, reply) {
  const replies = state.threads.get(postId);
  if (replies && !replies.some((r) => r.id === reply.id)) replies.push(reply);
  renderFeed();
}

async function toggleLike(postId) {
  const post = state.posts.get(postId);
  try {
    const result = await api("posts", `/posts/${postId}/like`, { method: post.liked_by_me ? "DELETE" : "PUT" });
    Object.assign(post, { liked_by_me: result.liked, likes_count: result.likes_count });
    renderFeed();
  } catch (error) {
    $("composer-error").textContent = `Like failed: ${error.message}`;
  }
}

function matchesView(post) {
  if (state.q) return false;  // a live post is not known to match a search
  if (state.filter === "instructors") return post.author?.role !== "student";
  if (state.filter === "mine") return post.author?.id === session.me.sub;
  return true;
}

/** A `feed` channel event. */
export function applyFeed(type, data) {
  switch (type) {
    case "post.created":
      if (matchesView(data)) upsert(data, true);
      break;
    case "post.updated": case "post.pinned": case "post.unpinned":
      if (state.posts.has(data.id)) upsert(data, true);
      break;
    case "post.deleted":
      state.posts.delete(data.id);
      state.threads.delete(data.id);
      break;
    case "post.liked": case "post.unliked": {
      const post = state.posts.get(data.post_id);
      if (post) Object.assign(post, { likes_count: data.likes_count, fresh: true });
      break;
    }
    case "reply.created": case "reply.updated": {
      const post = state.posts.get(data.post_id);
      if (post && data.replies_count != null) post.replies_count = data.replies_count;
      const replies = state.threads.get(data.post_id);
      if (replies) {
        const at = replies.findIndex((r) => r.id === data.id);
        if (at >= 0) replies[at] = { ...replies[at], ...data };
        else replies.push(data);
      }
      break;
    }
    case "reply.deleted": {
      const post = state.posts.get(data.post_id);
      if (post && data.replies_count != null) post.replies_count = data.replies_count;
      const replies = state.threads.get(data.post_id);
      if (replies) state.threads.set(data.post_id, replies.filter((r) => r.id !== data.id));
      break;
    }
    default:
      return;
  }
  renderFeed();
}

export function setUpFeed(onError) {
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector("button");
    button.disabled = true;
    $("composer-error").textContent = "";
    try {
      const post = await api("posts", "/posts", {
        method: "POST", body: { content: form.content.value, visibility: form.visibility.value },
      });
      upsert(post, true);
      renderFeed();
      form.content.value = "";
    } catch (error) {
      $("composer-error").textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
  const filters = $("feed-filters");
  let searchTimer = null;
  const reload = () => loadFeed().catch(onError);
  filters.addEventListener("change", () => {
    state.filter = filters.filter.value;
    reload();
  });
  filters.addEventListener("input", (event) => {
    if (event.target.name !== "q") return;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.q = filters.q.value.trim(); reload(); }, 300);
  });
  filters.addEventListener("submit", (event) => event.preventDefault());
  new IntersectionObserver(([entry]) => {
    if (entry.isIntersecting) loadOlder().catch(onError);
  }).observe($("feed-more"));
}

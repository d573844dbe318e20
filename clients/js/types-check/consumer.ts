// A frontend's use of the generated types, checked by `tsc --noEmit` in the test suite
// (tests/integration/clients): a renamed or retyped field in the server's payloads makes
// this file fail to compile. Types only: nothing here runs.
import type {
  ChannelEventHandler,
  ChannelEventOf,
  ClientFrame,
  ServerFrame,
} from "../src/generated/events.js";
import type { components as Posts, paths as PostsPaths } from "../src/generated/rest/posts.js";
import type { components as Goals } from "../src/generated/rest/goals.js";

// What a client library's `on` looks like to its caller.
declare function on<C extends string>(channel: C, handler: ChannelEventHandler<C>): void;

on("feed", (ev) => {
  if (ev.type === "post.liked") {
    const count: number = ev.data.likes_count;
    const post: string = ev.data.post_id;
    void [count, post];
  } else if (ev.type === "post.created") {
    const name: string = ev.data.author.name;
    const visibility: "public" | "members" = ev.data.visibility;
    void [name, visibility, ev.seq, ev.ts];
  } else if (ev.type === "reply.deleted") {
    const replies: number = ev.data.replies_count;
    void replies;
  }
});

on("reviews", (ev) => {
  if (ev.type === "review.requested") {
    // The kind tells a goal request from a revenue submission (which has an amount).
    if (ev.data.kind === "revenue_submission") {
      const amount: string = ev.data.amount;
      const proof: string = ev.data.proof_url;
      void [amount, proof];
    }
    const student: string = ev.data.student.name;
    void student;
  } else {
    const status: "approved" | "rejected" = ev.data.status;
    void status;
  }
});

on(`user:${"0b7a5c1e-4f8a-4b55-9b43-6f1c0a3d2e10"}`, (ev) => {
  switch (ev.type) {
    case "submission.approved": {
      const total: string = ev.data.total_revenue_earned;
      void total;
      break;
    }
    case "like.received": {
      const who: string = ev.data.user_name;
      void who;
      break;
    }
    case "goal.completed": {
      const days: number = ev.data.days_to_complete;
      void days;
      break;
    }
    default:
      break;
  }
});

on("leaderboard", (ev) => {
  if (ev.type === "rank.changed") {
    const rank: number | null = ev.data.new_rank;
    void rank;
  }
});

on("resources", (ev) => {
  if (ev.type === "resource.stats") {
    const average: number | null = ev.data.rating_average;
    void average;
  }
});

// An event type a channel does not carry is an error.
// @ts-expect-error `like.received` goes to user:<id>, never to the feed
const wrongChannel: ChannelEventOf<"feed">["type"] = "like.received";
void wrongChannel;

// Frames of the protocol.
const subscribe: ClientFrame = { op: "subscribe", channel: "feed", since: 41, id: 1 };
void subscribe;
function onFrame(frame: ServerFrame): void {
  if (frame.op === "subscribed" && !frame.recovered) {
    const seq: number = frame.seq;
    void seq;
  } else if (frame.op === "error") {
    const code: string = frame.code;
    void code;
  }
}
void onFrame;

// REST types from the services' OpenAPI documents.
type LikeState = Posts["schemas"]["LikeState"];
const like: LikeState = { liked: true, likes_count: 3 };
type CreatePost = PostsPaths["/posts"]["post"];
type NewPostBody = NonNullable<CreatePost["requestBody"]>["content"]["application/json"];
const body: NewPostBody = { content: "Hello", visibility: "members" };
const tracks: Goals["schemas"] extends object ? true : never = true;
void [like, body, tracks];

// The demo page's service worker: shows the Web Push messages of the notifications
// service (docs/notifications.md) and opens the right place when one is clicked.
//
// A message is the channel event as the gateway sends it: {type, channel, seq, data, ts}.
// The notification's tag is the channel and seq, so a message shown twice (a page that
// also got it live) replaces itself instead of stacking.

const TITLES = {
  "review.requested": "New item to review",
  "submission.approved": "Your revenue was approved",
  "submission.rejected": "Your revenue submission needs another look",
  "goal.assigned": "Your goal is set",
  "goal.completed": "Goal completed!",
  "badge.awarded": "New badge",
  "reply.received": "New reply",
  "like.received": "Someone liked your post",
  "story.published": "Your story is published",
};

function describe(event) {
  const data = event.data || {};
  switch (event.type) {
    case "review.requested":
      return data.kind === "revenue_submission"
        ? `${data.student?.name ?? "A student"} submitted $${data.amount} of revenue`
        : `${data.student?.name ?? "A student"} asks for the goal ${data.goal_slug ?? ""}`;
    case "submission.approved":
      return `$${data.amount ?? ""} verified`;
    case "submission.rejected":
      return data.reason ? `Reason: ${data.reason}` : "See the reason in your goals";
    default:
      return "";
  }
}

// Where a click leads: the review in the queue, or the student's goal card.
function target(event) {
  const data = event.data || {};
  if (event.type === "review.requested" && data.review_id) {
    return `./#review=${encodeURIComponent(data.review_id)}`;
  }
  if (event.type.startsWith("submission.") || event.type.startsWith("goal.")) {
    return "./#goal";
  }
  if (data.post_id) return `./#post=${encodeURIComponent(data.post_id)}`;
  return "./";
}

self.addEventListener("push", (push) => {
  let event;
  try {
    event = push.data.json();
  } catch {
    return; // not one of ours
  }
  const title = TITLES[event.type] ?? "Community Live";
  push.waitUntil(
    self.registration.showNotification(title, {
      body: describe(event),
      tag: `${event.channel}:${event.seq}`,
      timestamp: Date.parse(event.ts) || Date.now(),
      requireInteraction: event.type === "review.requested",
      data: { url: target(event) },
    }),
  );
});

self.addEventListener("notificationclick", (click) => {
  click.notification.close();
  const url = new URL(click.notification.data?.url ?? "./", self.registration.scope).href;
  click.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of windows) {
        if (new URL(client.url).origin === new URL(url).origin && "focus" in client) {
          await client.navigate(url).catch(() => undefined);
          return client.focus();
        }
      }
      return self.clients.openWindow(url);
    })(),
  );
});

// Web Push for the demo page: register the service worker (sw.js) and a push
// subscription with the notifications service. Call `enablePush` from a click
// handler only: browsers allow the permission prompt after a user gesture.
//
//   import { enablePush, pushSupported } from "./push.js";
//   button.hidden = !pushSupported();
//   button.onclick = () => enablePush({ notificationsUrl, token }).then(show, show);
//
// Returns the registered subscription (`{id, endpoint, ...}` from the service).

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export async function enablePush({ notificationsUrl, token }) {
  if (!pushSupported()) throw new Error("this browser cannot receive push messages");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error(`notifications are ${permission}`);

  const registration = await navigator.serviceWorker.register("sw.js");
  await navigator.serviceWorker.ready;
  const keyAnswer = await fetch(`${notificationsUrl}/notifications/vapid-public-key`);
  if (!keyAnswer.ok) throw new Error(`no server key (${keyAnswer.status})`);
  const { public_key: publicKey } = await keyAnswer.json();

  let subscription = await registration.pushManager.getSubscription();
  const current = subscription?.options?.applicationServerKey;
  if (subscription && current && !sameKey(new Uint8Array(current), keyBytes(publicKey))) {
    await subscription.unsubscribe(); // the server's key changed: subscribe again
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: keyBytes(publicKey),
  });

  const { endpoint, keys } = subscription.toJSON();
  const answer = await fetch(`${notificationsUrl}/notifications/push-subscriptions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ endpoint, keys, user_agent: navigator.userAgent.slice(0, 512) }),
  });
  if (!answer.ok) throw new Error(`the notifications service said ${answer.status}`);
  return answer.json();
}

function sameKey(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

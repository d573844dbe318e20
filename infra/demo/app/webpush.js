/*
 * "Turn on push notifications" for a signed-in user: the permission prompt
 * only comes from that click; then the service worker (sw.js) registers and
 * the browser subscribes with the notifications service's key (../push.js).
 * A browser that cannot subscribe (no push service, e.g. headless Chromium)
 * gets a clear sentence, not an error.
 */
import { $ } from "./dom.js";
import { enablePush, pushSupported } from "../push.js";
import { serviceUrl, session } from "./session.js";

const NOT_AVAILABLE = "Push not available in this browser.";

function say(text) {
  $("push-state").textContent = text;
}

// What went wrong, in words: the browser's refusal to subscribe (a DOMException:
// no push service, a private window) or the permission the user gave.
function failure(error) {
  if (error.name === "AbortError" || error.name === "NotSupportedError" || error.name === "NotAllowedError") {
    return NOT_AVAILABLE;
  }
  if (/denied/.test(error.message)) return "Notifications are blocked for this site in the browser's settings.";
  if (/default/.test(error.message)) return "Push stays off: the browser did not get permission.";
  return `Push could not be turned on (${error.message}).`;
}

async function turnOn() {
  const button = $("push-button");
  button.disabled = true;
  say("Turning on…");
  try {
    await enablePush({ notificationsUrl: serviceUrl("notifications", ""), token: session.token });
    button.hidden = true;
    say("Push notifications are on for this browser.");
  } catch (error) {
    console.warn(`push: ${error.name}: ${error.message}`);
    say(failure(error));
    button.disabled = false;
  }
}

export function setUpPush() {
  const button = $("push-button");
  button.hidden = !session.signedIn || !pushSupported();
  if (!session.signedIn) return;
  if (!pushSupported()) {
    say(NOT_AVAILABLE);
    return;
  }
  button.addEventListener("click", turnOn);
}

// adledger pages: a little progressive enhancement. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Ask before an irreversible action (voiding a lot, reversing a deposit, suspending).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // The promotion form: show only the fields of the chosen kind.
  const kind = document.querySelector("[data-kind-select]");
  if (kind) {
    const sync = () => {
      for (const part of document.querySelectorAll("[data-kind]")) {
        part.hidden = part.dataset.kind !== kind.value;
      }
    };
    kind.addEventListener("change", sync);
    sync();
  }
  // Move focus to the first error, so keyboard and screen-reader users land on it.
  const error = document.querySelector("main [role=alert]");
  if (error) {
    const field = error.id && document.querySelector(`[aria-describedby~="${error.id}"]`);
    (field || error).focus?.();
  }
});

// The console tables' per-row action buttons: each names its row for screen readers (a
// column of "Revoke" or "Delete" buttons says nothing on its own), and the irreversible
// ones take a second, explicit click.
import { el } from "/js/api.js";

/** A row's action button: `text` on screen, `label` naming the row for screen readers; `onClick` on a click. */
export function rowButton(text, label, onClick, className = "secondary") {
  const button = el("button", { type: "button", className }, text);
  button.setAttribute("aria-label", label);
  button.addEventListener("click", onClick);
  return button;
}

/**
 * Asks for a second, explicit click: puts a button reading `confirmText` in `cell` (in place
 * of what was there) and focuses it; its click disables it and runs `confirmed` through `attempt`.
 */
export function confirmFirst(cell, confirmText, attempt, confirmed) {
  const confirmButton = rowButton(confirmText, confirmText, () =>
    attempt(async () => {
      confirmButton.disabled = true;
      await confirmed();
    }),
    "",
  );
  cell.replaceChildren(confirmButton);
  confirmButton.focus();
}

/** HTML for the emails we send (ticket delivery, waitlist offers). */

/** `value` safe inside HTML text and attribute values: `& < > " '` become numeric character references. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

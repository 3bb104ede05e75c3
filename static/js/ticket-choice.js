// How many tickets and which price tier: the question the best-available form
// (event page and waiting room) and the waitlist form (waiting room) both ask.
// The fields are built here, once, into each page's form, and read back as
// the API's request body.
import { el, money } from "./api.js";

/**
 * Puts the quantity and price-tier fields (and, with `split`, the "need not be
 * together" box) at the top of `form`, replacing any from an earlier call. Ids
 * are `<prefix>-quantity`, `<prefix>-tier` and `<prefix>-split`.
 */
export function fillChoiceFields(form, prefix, { event, max, preferred, quantityLabel, split }) {
  const count = Math.min(event.purchaseLimit, max);
  const select = (id, name, choices) => el("select", { id, name }, ...choices.map(([value, label]) => el("option", { value }, label)));
  const field = (id, label, control, kind = "field") => el("div", { class: kind }, ...(kind === "field" ? [el("label", { for: id }, label), control] : [control, el("label", { for: id }, label)]));
  const quantity = select(`${prefix}-quantity`, "quantity", Array.from({ length: count }, (_, i) => [String(i + 1), String(i + 1)]));
  if (preferred) quantity.value = String(Math.min(preferred, count));
  const tier = select(`${prefix}-tier`, "priceTier", [
    ["", "Best in any tier"],
    ...event.prices.map((price) => [price.priceTier, `${price.priceTier} (${money(price.priceCents, event.currency)})`]),
  ]);
  const fields = [field(quantity.id, quantityLabel, quantity), field(tier.id, "Price tier", tier)];
  if (split) {
    const box = el("input", { id: `${prefix}-split`, name: "allowSplit", type: "checkbox" });
    fields.push(field(box.id, "My seats need not be together", box, "field checkbox"));
  }
  for (const old of form.querySelectorAll(":scope > .field")) old.remove();
  form.prepend(...fields);
}

/** The form's answer as the API takes it: `{ quantity, priceTier?, allowSplit? }`. */
export function readChoice(form) {
  const data = new FormData(form);
  const tier = data.get("priceTier");
  const split = form.elements.namedItem("allowSplit");
  return {
    quantity: Number(data.get("quantity")),
    ...(split ? { allowSplit: data.get("allowSplit") !== null } : {}),
    ...(tier ? { priceTier: String(tier) } : {}),
  };
}

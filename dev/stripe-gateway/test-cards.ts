/** Stripe's documented test cards, test PaymentMethods and decline codes (https://docs.stripe.com/testing). */

export const DECLINE_CODES = [
  "generic_decline",
  "insufficient_funds",
  "lost_card",
  "stolen_card",
  "expired_card",
  "incorrect_cvc",
  "processing_error",
  "test_mode_live_card",
] as const;
export type DeclineCode = (typeof DECLINE_CODES)[number];

/** For each decline code we honour, the error code and message Stripe returns with it. */
export const DECLINES: Record<DeclineCode, { code: string; message: string }> = {
  generic_decline: { code: "card_declined", message: "Your card was declined." },
  insufficient_funds: { code: "card_declined", message: "Your card has insufficient funds." },
  lost_card: { code: "card_declined", message: "Your card was declined." },
  stolen_card: { code: "card_declined", message: "Your card was declined." },
  expired_card: { code: "expired_card", message: "Your card has expired." },
  incorrect_cvc: { code: "incorrect_cvc", message: "Your card's security code is incorrect." },
  processing_error: { code: "processing_error", message: "An error occurred while processing your card. Try again in a little bit." },
  test_mode_live_card: {
    code: "card_declined",
    message: "Your card was declined. Your request was in test mode, but used a non test (live) card. For a list of valid test cards, visit: https://stripe.com/docs/testing.",
  },
};

interface TestCard {
  brand: string;
  funding: string;
  decline?: DeclineCode;
  /** Every charge needs a 3-D Secure challenge first (Stripe's "authentication required" cards). */
  threeDSecure?: true;
  /** The charge succeeds, then the cardholder's bank opens this kind of dispute on it (Stripe's dispute test cards). */
  dispute?: TestDispute;
}

/** What a dispute test card's bank opens: an inquiry (a question, no money withdrawn) or a chargeback. */
export type TestDispute = "inquiry";

const TEST_CARDS: Record<string, TestCard> = {
  "4242424242424242": { brand: "visa", funding: "credit" },
  "4000056655665556": { brand: "visa", funding: "debit" },
  "5555555555554444": { brand: "mastercard", funding: "credit" },
  "378282246310005": { brand: "amex", funding: "credit" },
  "4000000000000002": { brand: "visa", funding: "credit", decline: "generic_decline" },
  "4000000000009995": { brand: "visa", funding: "credit", decline: "insufficient_funds" },
  "4000000000009987": { brand: "visa", funding: "credit", decline: "lost_card" },
  "4000000000009979": { brand: "visa", funding: "credit", decline: "stolen_card" },
  "4000000000000069": { brand: "visa", funding: "credit", decline: "expired_card" },
  "4000000000000127": { brand: "visa", funding: "credit", decline: "incorrect_cvc" },
  "4000000000000119": { brand: "visa", funding: "credit", decline: "processing_error" },
  "4000002760003184": { brand: "visa", funding: "credit", threeDSecure: true },
  "4000002500003155": { brand: "visa", funding: "credit", threeDSecure: true },
  "4000000000001976": { brand: "visa", funding: "credit", dispute: "inquiry" },
};

/** Stripe's test PaymentMethod ids and the card each stands for. */
export const TEST_PAYMENT_METHODS: Record<string, string> = {
  pm_card_visa: "4242424242424242",
  pm_card_visa_debit: "4000056655665556",
  pm_card_mastercard: "5555555555554444",
  pm_card_amex: "378282246310005",
  pm_card_chargeDeclined: "4000000000000002",
  pm_card_chargeDeclinedInsufficientFunds: "4000000000009995",
  pm_card_chargeDeclinedLostCard: "4000000000009987",
  pm_card_chargeDeclinedStolenCard: "4000000000009979",
  pm_card_chargeDeclinedExpiredCard: "4000000000000069",
  pm_card_chargeDeclinedIncorrectCvc: "4000000000000127",
  pm_card_chargeDeclinedProcessingError: "4000000000000119",
  pm_card_authenticationRequired: "4000002760003184",
  pm_card_createDisputeInquiry: "4000000000001976",
};

/** Whether charging this card number needs a 3-D Secure challenge first. */
export function needsChallenge(number: string): boolean {
  return TEST_CARDS[number]?.threeDSecure === true;
}

/** The dispute the bank opens once a charge on this card number succeeds, if it opens one. */
export function disputeOf(number: string): TestDispute | undefined {
  return TEST_CARDS[number]?.dispute;
}

/** The brand and funding of a card number (unknown for a number that is not a test card). */
export function cardDetails(number: string): { brand: string; funding: string } {
  const card = TEST_CARDS[number];
  return { brand: card?.brand ?? "unknown", funding: card?.funding ?? "unknown" };
}

/** How a charge on this card number is declined, if it is: any number that is not a test card is a live card, refused in test mode. */
export function declineOf(number: string): DeclineCode | undefined {
  const card = TEST_CARDS[number];
  return card ? card.decline : "test_mode_live_card";
}

// Sign in by emailed code: email -> POST /api/auth/code -> code -> POST /api/auth/session,
// then back to ?next= (a path on this site) with the session kept by api.js.
// The code works only with the challenge its request answered, kept here in
// memory: codes others ask for this address can't be redeemed nor burned here.
import { announce, api, ApiError, param, safeNext, saveSession, showError } from "./api.js";

const emailForm = document.getElementById("email-form");
const codeForm = document.getElementById("code-form");
const emailInput = document.getElementById("email");
const codeInput = document.getElementById("code");
const status = document.getElementById("status");
const errorRegion = document.getElementById("error");
const next = safeNext(param("next"));

let email = "";
let challenge = "";

function busy(form, on) {
  for (const button of form.querySelectorAll("button")) button.disabled = on;
}

async function sendCode() {
  showError(errorRegion, null);
  announce(status, "Sending your code…");
  busy(emailForm, true);
  busy(codeForm, true);
  try {
    const data = await api("/api/auth/code", { method: "POST", body: { email } });
    challenge = data.challenge;
    emailForm.hidden = true;
    codeForm.hidden = false;
    codeInput.value = "";
    announce(status, `We sent a code to ${email} (reference ${data.reference}). Check your inbox.`);
    codeInput.focus();
  } catch (error) {
    announce(status, "");
    showError(errorRegion, error);
  } finally {
    busy(emailForm, false);
    busy(codeForm, false);
  }
}

emailForm.addEventListener("submit", (event) => {
  event.preventDefault();
  email = emailInput.value.trim().toLowerCase();
  if (!emailInput.checkValidity() || email === "") {
    showError(errorRegion, new ApiError(400, "invalid_email", "Enter a valid email address, like fan@example.com."));
    emailInput.focus();
    return;
  }
  void sendCode();
});

codeForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = codeInput.value.trim();
  if (!/^\d{6}$/.test(code)) {
    showError(errorRegion, new ApiError(400, "invalid_code", "Enter the 6 digits from the email."));
    codeInput.focus();
    return;
  }
  showError(errorRegion, null);
  announce(status, "Signing you in…");
  busy(codeForm, true);
  try {
    const session = await api("/api/auth/session", { method: "POST", body: { email, challenge, code } });
    saveSession({ token: session.token, accountId: session.accountId, expiresAt: session.expiresAt, email });
    announce(status, "Signed in. Taking you back…");
    location.replace(next);
  } catch (error) {
    announce(status, "");
    showError(errorRegion, error);
    codeInput.select();
    codeInput.focus();
    busy(codeForm, false);
  }
});

document.getElementById("resend").addEventListener("click", () => void sendCode());
document.getElementById("change-email").addEventListener("click", () => {
  showError(errorRegion, null);
  codeForm.hidden = true;
  emailForm.hidden = false;
  emailInput.focus();
});

emailInput.focus();

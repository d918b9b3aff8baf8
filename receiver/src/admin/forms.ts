/**
 * Validation of the admin forms' fields (pure), with the Store's bounds, so a bad field gets a
 * clear message before any database work. Errors are fixed texts that never echo input.
 */
import { LIMITS } from '../../../src/protocol/wire';
import { DAYS_MAX as MAX_DAYS, DIVISION_MAX_CHARS as MAX_DIVISION_CHARS, EMAIL_MAX_CHARS as MAX_EMAIL_CHARS } from '../store';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const CONTROL = /[\u0000-\u001f\u007f]/;

function field(form: URLSearchParams, name: string): string {
  return (form.get(name) ?? '').trim();
}

export function parseEmail(form: URLSearchParams): Parsed<string> {
  const email = field(form, 'email');
  if (email.length === 0 || email.length > MAX_EMAIL_CHARS || CONTROL.test(email) || !/^[^\s@]+@[^\s@]+$/.test(email)) {
    return { ok: false, error: 'Enter a valid email address.' };
  }
  return { ok: true, value: email };
}

/** Empty means "the receiver's default". */
export function parseDays(form: URLSearchParams): Parsed<number | undefined> {
  const raw = field(form, 'days');
  if (raw === '') return { ok: true, value: undefined };
  if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_DAYS) {
    return { ok: false, error: `Days valid must be a whole number from 1 to ${MAX_DAYS}.` };
  }
  return { ok: true, value: Number(raw) };
}

export function parseProvision(form: URLSearchParams): Parsed<{ email: string; division: string; days: number | undefined }> {
  const email = parseEmail(form);
  if (!email.ok) return email;
  const division = field(form, 'division');
  if (division.length > MAX_DIVISION_CHARS || CONTROL.test(division)) {
    return { ok: false, error: `Division must be at most ${MAX_DIVISION_CHARS} characters.` };
  }
  const days = parseDays(form);
  if (!days.ok) return days;
  return { ok: true, value: { email: email.value, division, days: days.value } };
}

export function parsePublicKey(form: URLSearchParams): Parsed<string> {
  const key = field(form, 'public_key');
  if (key.length === 0 || key.length > LIMITS.publicKeyChars) return { ok: false, error: 'Unknown device key.' };
  return { ok: true, value: key };
}

export interface BudgetForm {
  scope: 'org' | 'division' | 'user';
  subject: string;
  unit: 'usd' | 'tokens';
  monthlyLimit: number;
}

export function parseBudget(form: URLSearchParams): Parsed<BudgetForm> {
  const scope = field(form, 'scope');
  if (scope !== 'org' && scope !== 'division' && scope !== 'user') return { ok: false, error: 'Choose the organisation, a division or a user.' };
  const unit = field(form, 'unit');
  if (unit !== 'usd' && unit !== 'tokens') return { ok: false, error: 'Choose dollars or tokens.' };
  const raw = field(form, 'limit');
  const limit = Number(raw);
  if (!/^\d{1,15}(?:\.\d{1,4})?$/.test(raw) || !(limit > 0)) return { ok: false, error: 'The monthly limit must be a number above 0.' };
  let subject = field(form, 'subject');
  if (scope === 'org') subject = '';
  else if (scope === 'user') {
    const email = parseEmail(new URLSearchParams({ email: subject }));
    if (!email.ok) return { ok: false, error: 'A user budget needs the user\'s email.' };
    subject = email.value.toLowerCase();
  } else if (subject === '' || subject.length > MAX_DIVISION_CHARS || CONTROL.test(subject)) {
    return { ok: false, error: 'A division budget needs the division name.' };
  }
  return { ok: true, value: { scope, subject, unit, monthlyLimit: limit } };
}

export function parseId(form: URLSearchParams): Parsed<number> {
  const raw = field(form, 'id');
  if (!/^\d{1,12}$/.test(raw)) return { ok: false, error: 'Unknown budget.' };
  return { ok: true, value: Number(raw) };
}

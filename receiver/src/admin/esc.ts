/**
 * The one HTML escaping helper. Every value that reaches admin HTML (stored data, numbers,
 * dates, request-derived text) goes through `esc()`; render code never concatenates a raw value.
 * Output is safe in element content and in double- or single-quoted attribute values.
 */
const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function esc(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return text.replace(/[&<>"']/g, (ch) => ENTITIES[ch] ?? ch);
}

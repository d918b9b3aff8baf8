/**
 * The dashboard's only CSS, inlined in a `<style>` element and allowed by a CSP hash, so the page
 * needs no second request and the policy can forbid everything else (no inline style attributes,
 * no scripts at all). Charts use SVG presentation attributes, which CSP does not govern.
 */
import { createHash } from 'node:crypto';

export const CSS = `
:root{color-scheme:light;--fg:#1d2430;--muted:#5b6576;--line:#d9dee7;--bg:#f6f7f9;--card:#fff;--accent:#2f5bd3;--bad:#b42318;--ok:#067647}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:16px;padding:10px 24px;background:#1d2430;color:#fff}
header h1{font-size:16px;margin:0;font-weight:600}
header nav{display:flex;gap:14px;flex:1;flex-wrap:wrap}
header a{color:#c9d6ff;text-decoration:none}
header nav a[aria-current=page]{color:#fff;font-weight:600;border-bottom:2px solid #fff}
header form{margin:0}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:15px;margin:0 0 10px}
h3{font-size:13px;margin:14px 0 6px;color:var(--muted)}
.note{color:var(--muted);margin:4px 0 10px;font-size:13px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.tile{border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.tile b{display:block;font-size:20px;font-weight:600}
.tile span{color:var(--muted);font-size:12px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.mono,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;overflow-wrap:break-word}
.status-active{color:var(--ok);font-weight:600}
.status-revoked,.status-expired{color:var(--bad);font-weight:600}
.flash{border-radius:6px;padding:10px 14px;margin:16px 0}
.flash.ok{background:#ecfdf3;border:1px solid #abefc6}
.flash.error{background:#fef3f2;border:1px solid #fecdca}
.secret{background:#fffaeb;border:1px solid #fedf89;border-radius:6px;padding:10px 14px;margin:16px 0}
.secret code{display:block;font-size:14px;padding:6px 0;user-select:all}
form.inline{display:inline;margin:0}
form.row{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin:8px 0}
label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:2px}
input[type=text],input[type=email],input[type=number],input[type=password]{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:5px;min-width:120px}
button{font:inherit;padding:5px 12px;border-radius:5px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
button.danger{border-color:var(--bad);background:#fff;color:var(--bad)}
button.plain{border-color:#8da2d8;background:transparent;color:#fff}
.login{max-width:380px;margin:12vh auto}
.login input{width:100%}
.error-text{color:var(--bad)}
.legend{display:flex;gap:14px;font-size:12px;color:var(--muted);margin:4px 0}
svg{max-width:100%;height:auto}
svg.chart{width:100%}
svg text{font:11px system-ui,sans-serif;fill:#5b6576}
.warn{background:#fffaeb;border:1px solid #fedf89;border-radius:6px;padding:8px 12px}
.tile b{overflow-wrap:anywhere;font-size:clamp(14px,1.6vw,20px)}
.unpriced{color:var(--muted);font-style:italic}
.pager{display:flex;gap:14px;align-items:center;font-size:13px;color:var(--muted)}
.presets{font-size:13px;margin-bottom:6px}.presets a,.presets b{margin-right:10px}
th a{color:inherit;text-decoration:none}th a:hover{text-decoration:underline}
select,input[type=date],input[type=search]{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:5px}
form.search{margin:4px 0}
.budget-over{color:var(--bad);font-weight:600}.budget-warning,.budget-on-course-to-exceed{color:#b54708;font-weight:600}.budget-ok{color:var(--ok)}
`;

/** `'sha256-…'` source expression for the CSS above. */
export const CSS_HASH = `'sha256-${createHash('sha256').update(CSS, 'utf8').digest('base64')}'`;

/**
 * Nothing but our own hashed stylesheet and same-origin form posts. No script source at all:
 * the dashboard works without JavaScript.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src ${CSS_HASH}`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** For the export snapshot, which has no server behind it when opened from disk. */
export const EXPORT_CONTENT_SECURITY_POLICY = ["default-src 'none'", `style-src ${CSS_HASH}`, "base-uri 'none'", "form-action 'none'"].join('; ');

/** Every dashboard path (the request log names only these; anything else is `/admin/*`). */
export const ADMIN_ROUTES = [
  '/admin',
  '/admin/',
  '/admin/login',
  '/admin/logout',
  '/admin/user',
  '/admin/users',
  '/admin/users/revoke',
  '/admin/users/reissue',
  '/admin/keys/revoke',
  '/admin/budgets',
  '/admin/budgets/delete',
  '/admin/export/usage.csv',
  '/admin/export/usage.json',
  '/admin/export/events.csv',
  '/admin/export/events.json',
  '/admin/export/audit.csv',
] as const;

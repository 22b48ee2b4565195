// The signed-in caller (GET /v1/whoami) and what it may do: buttons a caller may not use are not shown.
// The API checks every call again; this only keeps the page honest.
import { get } from './api.js';

let me = null;
export function setMe(value) { me = value; }

// What the signed-in caller may do (the API checks it again on every call).
const ROLE_RANK = { viewer: 1, member: 2, owner: 3 };
export const who = {
  get me() { return me; },
  get admin() { return !!me?.admin; },
  role(project) { return me?.projects?.find((p) => p.project === project)?.role || null; },
  atLeast(project, role) {
    if (me?.admin) return true;
    return (ROLE_RANK[this.role(project)] || 0) >= ROLE_RANK[role];
  },
  canWrite(project) { return this.atLeast(project, 'member'); },
  canManage(project) { return this.atLeast(project, 'owner'); },
  // Projects the caller belongs to (admins: every project, from GET /v1/projects).
  async projects() {
    if (me?.admin) {
      const r = await get('/v1/projects');
      return r.projects.map((p) => p.name);
    }
    return (me?.projects || []).map((p) => p.project);
  },
};


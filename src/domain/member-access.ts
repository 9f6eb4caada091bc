/**
 * Who may act: a verified token (Principal) is only half of it — the member must still exist and
 * its password version must equal the token's (a password change revokes every older token).
 * Roles are read from the row, never trusted from the token.
 */
import type { DataAccess, ReadOptions, ReadOutcome, TenantRef } from './data-access.js';
import type { Principal } from './member-tokens.js';
import type { Member } from './models.js';
import type { TenantRepos } from './repositories.js';
import { fail, ok, type Result } from './result.js';

const REVOKED = fail('unauthorized', 'token_revoked', 'the token is no longer valid; log in again');

/** Inside a write transaction (master, current data). */
export async function actingMember(
  repos: TenantRepos,
  principal: Principal,
  { librarian = false }: { librarian?: boolean } = {},
): Promise<Result<Member>> {
  const member = await repos.members.findById(principal.memberId);
  if (!member || member.passwordVersion !== principal.passwordVersion) return REVOKED;
  if (librarian && member.role !== 'librarian') {
    return fail('forbidden', 'librarian_required', 'only a librarian of this tenant may do this');
  }
  return ok(member);
}

const STALE = Symbol('stale');

/**
 * A read on behalf of a member. A replica may not have the member yet (just registered) or may
 * still hold an older password version: both look "stale" (row missing, or a version below the
 * token's) and the read is redone on the master, which decides. A version above the token's is a
 * revoked token wherever it is read.
 */
export async function readAsMember<T>(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
  options: ReadOptions,
  fn: (repos: TenantRepos, member: Member) => Promise<Result<T>>,
): Promise<ReadOutcome<Result<T>>> {
  const attempt = (opts: ReadOptions, staleIsFinal: boolean) =>
    data.read(tenant, opts, async (repos): Promise<Result<T> | typeof STALE> => {
      const member = await repos.members.findById(principal.memberId);
      if (!member || member.passwordVersion < principal.passwordVersion)
        return staleIsFinal ? REVOKED : STALE;
      if (member.passwordVersion !== principal.passwordVersion) return REVOKED;
      return fn(repos, member);
    });
  const first = await attempt(options, options.from === 'master');
  if (first.value !== STALE) return first as ReadOutcome<Result<T>>;
  return (await attempt({ ...options, from: 'master' }, true)) as ReadOutcome<Result<T>>;
}

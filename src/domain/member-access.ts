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

/**
 * The member a token speaks for, as it is now: read on the master, so a password change revokes
 * every older token at once, on every instance, whatever the replicas have applied. Only while
 * the master cannot be reached, or hangs (no answer within 500 ms: shard-router.ts
 * readMasterElseReplica), does a replica's row decide (reads keep working through a master
 * outage; revocation then lags by that replica's lag). A replica that has not got the member, or
 * has an older password version, cannot decide: the master is asked again (503 while it is down).
 */
export async function currentMember(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
): Promise<ReadOutcome<Result<Member>>> {
  const find = (repos: TenantRepos) => repos.members.findById(principal.memberId);
  let outcome = await data.read(tenant, { from: 'master-else-replica' }, find);
  let member = outcome.value;
  if (outcome.readFrom !== 'master' && (!member || member.passwordVersion < principal.passwordVersion)) {
    outcome = await data.read(tenant, { from: 'master' }, find);
    member = outcome.value;
  }
  const value = member && member.passwordVersion === principal.passwordVersion ? ok(member) : REVOKED;
  return { value, readFrom: outcome.readFrom };
}

/**
 * A read on behalf of a member: the token is checked against the member's current row
 * (`currentMember`), then `fn` reads as `options` say (a replica, at the caller's token).
 * `readFrom` is where `fn` read.
 */
export async function readAsMember<T>(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
  options: ReadOptions,
  fn: (repos: TenantRepos, member: Member) => Promise<Result<T>>,
): Promise<ReadOutcome<Result<T>>> {
  const check = await currentMember(data, tenant, principal);
  if (!check.value.ok) return check as ReadOutcome<Result<T>>;
  const member = check.value.value;
  return data.read(tenant, options, (repos) => fn(repos, member));
}

/**
 * Member rules: registration (the tenant's first member becomes its librarian, decided inside the
 * transaction so two concurrent first registrations cannot both win), login, password change,
 * and the member's own record. Emails are queued as outbox rows in the same transaction.
 */
import type { DataAccess, ReadOutcome, TenantRef, WriteOutcome } from './data-access.js';
import { newId } from './ids.js';
import { currentMember } from './member-access.js';
import type { IssuedToken, MemberTokens, Principal } from './member-tokens.js';
import type { Member } from './models.js';
import { normalizingHasher } from './normalizing-hasher.js';
import { inTurns, type PasswordHasher, type PasswordWork } from './password-hasher.js';
import type { TenantRepos } from './repositories.js';
import { fail, ok, type Result } from './result.js';
import { tenantPayload } from './tenant-payload.js';

export interface MemberDeps {
  data: DataAccess;
  passwords: PasswordHasher;
  /** turns for password work by tenant (absent: none, e.g. in unit tests) */
  passwordWork?: PasswordWork;
  memberTokens: MemberTokens;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function registerMember(
  { data, passwords: hasher, passwordWork }: Pick<MemberDeps, 'data' | 'passwords' | 'passwordWork'>,
  tenant: TenantRef,
  input: { email: string; name: string; password: string },
): Promise<WriteOutcome<Member>> {
  const passwords = inTurns(normalizingHasher(hasher), passwordWork, tenant.id);
  // Hash before the transaction: ~20-50 ms of CPU must not hold a connection and row locks. But
  // not ahead of a master whose breaker is open: that answers 503 at once, without the hashing.
  data.admitWrite(tenant);
  const passwordHash = await passwords.hash(input.password);
  const email = normaliseEmail(input.email);
  return data.write(tenant, async (repos, tx) => {
    // the database server's clock (tx.now): the welcome mail's outbox row is due at it, and the
    // relay compares it with the server's NOW(3)
    const now = await tx.now();
    const first = await repos.members.claimFirstRegistration(now);
    const member: Member = {
      id: newId(now.getTime()),
      email,
      name: input.name,
      role: first ? 'librarian' : 'member',
      passwordVersion: 1,
      passwordHash,
      createdAt: now,
      updatedAt: now,
    };
    if ((await repos.members.insert(member)) === 'email_taken') {
      return fail('conflict', 'email_taken', 'a member with this email exists in this tenant');
    }
    await tx.commitWith(() =>
      repos.outbox.add(
        {
          kind: 'welcome',
          recipient: email,
          payload: {
            ...tenantPayload(tenant),
            memberId: member.id,
            name: member.name,
            email,
            role: member.role,
          },
        },
        now,
      ),
    );
    return ok(member);
  });
}

/** re-reads of a verified member's row for a password change made meanwhile (`login`) */
const MAX_RECHECKS = 2;

const INVALID_CREDENTIALS = fail('unauthorized', 'invalid_credentials', 'email or password is wrong');

/**
 * Reads on the master: a member who just registered or changed the password through another
 * instance must be able to log in at once, whatever the replicas have applied. While the master
 * cannot be reached, a replica's row lets a member in whose password it confirms (reads go on
 * through a master outage; a password changed within that replica's lag then works for that
 * long, as token revocation does in member-access.ts). A replica cannot refuse: an unknown email
 * or a wrong password there may be a registration or a change it has not applied, so the master
 * is asked again, which answers 503 while it is down.
 * Unknown email and wrong password give the same failure after about the same time.
 *
 * A password change that commits while the password is being verified (tens of ms of hashing)
 * would make the login answer 200 with a token its change has already revoked: once verified and
 * settled, the row is read again by id right before the token is issued (`passwordStillChecked`).
 * A change committing after that re-read revokes the token as it revokes any older token. A login
 * the re-read refuses stays settled `succeeded`: its password was right when it was checked.
 *
 * `attempt` (the login throttle's) is settled once: `succeeded`, `failed` (unknown email or wrong
 * password), or `undecided` when something failed before a verdict. A password a replica's row
 * refused, then the master not answering or the master's check refused a turn (password work
 * takes turns, `passwordWork`), is `failed` although the answer is 503: counted as undecided, a
 * master outage made login an unthrottled password oracle (503 for every wrong guess, 200 for the
 * right one; an outside check ran 200 guesses, none counted). Each check, both NFKC forms of it
 * included, is one turn: a refusal never falls between the halves of one verdict.
 */
export async function login(
  { data, passwords: hasher, passwordWork, memberTokens }: MemberDeps,
  tenant: TenantRef,
  input: { email: string; password: string },
  attempt?: PasswordCheckAttempt,
): Promise<ReadOutcome<Result<IssuedToken>>> {
  const passwords = inTurns(normalizingHasher(hasher), passwordWork, tenant.id);
  const email = normaliseEmail(input.email);
  const find = (repos: TenantRepos) => repos.members.findByEmail(email);
  let refusedByReplica = false;
  let found: ReadOutcome<Member | undefined>;
  let verified: boolean;
  try {
    found = await data.read(tenant, { from: 'master-else-replica' }, find);
    verified = found.value ? await passwords.verify(found.value.passwordHash, input.password) : false;
    if (!verified && found.readFrom !== 'master') {
      // a check that ran and said wrong stands as a verdict whatever fails after it (the master
      // not answering, or the second check refused a turn: a review got 24 of 25 wrong guesses
      // answered an uncounted 503 while one tenant's registrations kept the turns busy). An
      // address the replica does not have costs a check too and stands alike: known or not, an
      // address then gets the same checks, answers and count (a review: an unknown one answered
      // 503 uncounted and fast while a known one was counted to 429 with the master down)
      if (!found.value) await passwords.verifyDummy(input.password);
      refusedByReplica = true;
      found = await data.read(tenant, { from: 'master' }, find);
      verified = found.value ? await passwords.verify(found.value.passwordHash, input.password) : false;
    }
    if (!found.value) await passwords.verifyDummy(input.password);
  } catch (error) {
    await attempt?.settle(refusedByReplica ? 'failed' : 'undecided');
    throw error;
  }
  await attempt?.settle(verified ? 'succeeded' : 'failed');
  const member =
    verified && found.value
      ? await passwordStillChecked(data, tenant, found.value, input, passwords)
      : undefined;
  if (!member) return { value: INVALID_CREDENTIALS, readFrom: found.readFrom };
  const token = await memberTokens.issue({
    tenantId: tenant.id,
    memberId: member.id,
    passwordVersion: member.passwordVersion,
  });
  return { value: ok(token), readFrom: found.readFrom };
}

/**
 * The member whose password `input` matched, read again right before its token is issued: the
 * same row when its password version has not moved on (a lagging replica's older one, or its
 * lack of the row, is not a change), the newer row when the password matches that one's hash
 * too, else undefined (changed to another password, or the member is gone). At most
 * MAX_RECHECKS reads.
 */
async function passwordStillChecked(
  data: DataAccess,
  tenant: TenantRef,
  verified: Member,
  input: { password: string },
  passwords: PasswordHasher,
): Promise<Member | undefined> {
  let member = verified;
  for (let round = 0; round < MAX_RECHECKS; round++) {
    const again = await data.read(tenant, { from: 'master-else-replica' }, (repos) =>
      repos.members.findById(member.id),
    );
    // gone on the master; a replica that lacks the row (it may lag) cannot say so
    if (!again.value) return again.readFrom === 'master' ? undefined : member;
    if (again.value.passwordVersion <= member.passwordVersion) return member;
    member = again.value;
    if (!(await passwords.verify(member.passwordHash, input.password))) return undefined;
  }
  return member;
}

/** one password check's slot in the login throttle, settled once (PasswordCheckGuard) */
export interface PasswordCheckAttempt {
  settle(outcome: 'succeeded' | 'failed' | 'undecided'): Promise<void>;
}

/**
 * Asked before a password of `email` is verified; may throw to refuse the attempt (the route's
 * login throttle answers 429 so). The attempt it returns is settled once: `failed` (wrong
 * password), `succeeded`, or `undecided` (no verdict: something failed).
 */
export type PasswordCheckGuard = (email: string) => Promise<PasswordCheckAttempt>;

export async function changePassword(
  { data, passwords: hasher, passwordWork }: Pick<MemberDeps, 'data' | 'passwords' | 'passwordWork'>,
  tenant: TenantRef,
  principal: Principal,
  input: { currentPassword: string; newPassword: string },
  guard?: PasswordCheckGuard,
): Promise<WriteOutcome<void>> {
  const passwords = inTurns(normalizingHasher(hasher), passwordWork, tenant.id);
  const current = await data.read(tenant, { from: 'master' }, (repos) =>
    repos.members.findById(principal.memberId),
  );
  const member = current.value;
  if (!member || member.passwordVersion !== principal.passwordVersion) {
    return { result: fail('unauthorized', 'token_revoked', 'the token is no longer valid; log in again') };
  }
  // a stolen token must not become an unthrottled password oracle: the guesses of currentPassword
  // count against the same account as failed logins do
  const attempt = await guard?.(member.email);
  let verified: boolean;
  try {
    verified = await passwords.verify(member.passwordHash, input.currentPassword);
  } catch (error) {
    await attempt?.settle('undecided');
    throw error;
  }
  await attempt?.settle(verified ? 'succeeded' : 'failed');
  if (!verified) {
    return { result: fail('forbidden', 'wrong_current_password', 'currentPassword is wrong') };
  }
  const passwordHash = await passwords.hash(input.newPassword);
  return data.write(tenant, async (repos, tx) => {
    // the server's clock, as every time a write stores (tx.now)
    const now = await tx.now();
    // compare-and-set: a concurrent change (or a revoked token) loses instead of overwriting
    const changed = await repos.members.updatePassword({
      id: member.id,
      expectedVersion: principal.passwordVersion,
      passwordHash,
      at: now,
    });
    if (!changed) return fail('unauthorized', 'token_revoked', 'the token is no longer valid; log in again');
    await tx.commitWith(() =>
      repos.outbox.add(
        {
          kind: 'password_changed',
          recipient: member.email,
          payload: {
            ...tenantPayload(tenant),
            memberId: member.id,
            name: member.name,
            changedAt: now.toISOString(),
          },
        },
        now,
      ),
    );
    return ok(undefined);
  });
}

export function getMe(
  { data }: Pick<MemberDeps, 'data'>,
  tenant: TenantRef,
  principal: Principal,
): Promise<ReadOutcome<Result<Member>>> {
  // the token check reads the member's current row (master), which is the answer
  return currentMember(data, tenant, principal);
}

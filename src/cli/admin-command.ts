import { checkPasswordRule, hashPassword } from '../admin/passwords.js';
import { GatewayError } from '../errors.js';
import { AuditTrail } from '../store/audit-trail.js';
import { checkRole, checkUserName, USER_ROLES, UserStore } from '../store/user-store.js';
import { oneOf, parseStrict, UsageError } from './cli-args.js';
import { readPassword } from './read-password.js';
import { cliActor, withStore } from './store-access.js';

export const ADMIN_USAGE = `Usage: cxr-gateway admin add-user NAME --role viewer|admin [--password-stdin] [--config FILE]
       cxr-gateway admin set-password NAME [--password-stdin] [--config FILE]
       cxr-gateway admin set-role NAME --role viewer|admin [--config FILE]
       cxr-gateway admin remove-user NAME [--config FILE]
       cxr-gateway admin disable-user NAME | enable-user NAME [--config FILE]
       cxr-gateway admin users [--json] [--config FILE]

Console users (local accounts in the job store). A viewer reads; an admin also releases, discards, reprocesses and
applies rules. The password (at least 12 characters) is asked twice on the terminal without echo, or read from
stdin with --password-stdin (for scripts: one line). A new password, a new role, disabling or removal ends the
user's sessions; a disabled user cannot log in until enabled again. Each change is recorded in the audit trail as cli:<your OS user>.`;

export async function adminCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseStrict(argv, {
    config: { type: 'string', short: 'c' },
    role: { type: 'string' },
    'password-stdin': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(`${ADMIN_USAGE}\n`);
    return 0;
  }
  const [action, name, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument(s): ${extra.join(' ')}`);
  const role = oneOf('role', values.role, USER_ROLES);
  const actor = cliActor();
  const audited = (trail: AuditTrail, what: string, target: string, after: unknown, now: number) =>
    trail.record(
      {
        category: 'admin',
        action: what,
        user: actor.user,
        role: actor.role,
        address: actor.address,
        target,
        outcome: 'success',
        after,
      },
      now,
    );

  if (action === 'users') {
    if (name !== undefined) throw new UsageError('admin users takes no name');
    return withStore(values.config, 'read', ({ store }) => {
      const users = new UserStore(store.connection).listUsers();
      if (values.json) process.stdout.write(`${JSON.stringify(users, null, 2)}\n`);
      else {
        for (const u of users)
          process.stdout.write(
            `${u.name.padEnd(24)}  ${u.role.padEnd(6)}  ${u.disabled ? 'disabled' : 'active  '}  since ${new Date(u.createdAt).toISOString()}\n`,
          );
        process.stdout.write(`${users.length} user(s)\n`);
      }
      return 0;
    });
  }
  if (action === undefined)
    throw new UsageError(
      'admin needs an action: add-user, set-password, set-role, disable-user, enable-user, remove-user or users',
    );
  if (!['add-user', 'set-password', 'set-role', 'disable-user', 'enable-user', 'remove-user'].includes(action))
    throw new UsageError(`unknown admin action '${action}'`);
  if (name === undefined) throw new UsageError(`admin ${action} needs the user NAME`);
  checkUserName(name);
  const target = `user ${name}`;

  if (action === 'disable-user' || action === 'enable-user') {
    if (values['password-stdin'] || role !== undefined) throw new UsageError(`${action} takes only the user NAME`);
    const disabled = action === 'disable-user';
    return withStore(values.config, 'write', ({ store }) => {
      store.connection.transaction(() => {
        const now = Date.now();
        new UserStore(store.connection).setDisabled(name, disabled, now);
        audited(new AuditTrail(store.connection), `user.${action.replace('-user', '')}`, target, { disabled }, now);
      })();
      process.stdout.write(
        disabled
          ? `console user '${name}' is disabled (their sessions ended)\n`
          : `console user '${name}' is enabled\n`,
      );
      return 0;
    });
  }
  if (action === 'remove-user' || action === 'set-role') {
    if (values['password-stdin']) throw new UsageError(`--password-stdin is not for ${action}`);
    if (action === 'remove-user') {
      if (role !== undefined) throw new UsageError('--role is not for remove-user');
      return withStore(values.config, 'write', ({ store }) => {
        const users = new UserStore(store.connection);
        const trail = new AuditTrail(store.connection);
        store.connection.transaction(() => {
          const before = users.findUser(name);
          users.removeUser(name);
          const now = Date.now();
          trail.record(
            {
              category: 'admin',
              action: 'user.remove',
              user: actor.user,
              role: actor.role,
              address: actor.address,
              target,
              outcome: 'success',
              before: before && { role: before.role },
            },
            now,
          );
        })();
        process.stdout.write(`removed console user '${name}' (their sessions ended)\n`);
        return 0;
      });
    }
    if (role === undefined) throw new UsageError('set-role needs --role viewer|admin');
    return withStore(values.config, 'write', ({ store }) => {
      const users = new UserStore(store.connection);
      store.connection.transaction(() => {
        const now = Date.now();
        users.setRole(name, role, now);
        audited(new AuditTrail(store.connection), 'user.set-role', target, { role }, now);
      })();
      process.stdout.write(`console user '${name}' is now ${role} (their sessions ended)\n`);
      return 0;
    });
  }

  if (action === 'add-user') {
    if (role === undefined) throw new UsageError('add-user needs --role viewer|admin');
    checkRole(role);
  } else if (role !== undefined) throw new UsageError('--role is for add-user and set-role');
  // Refuse before asking for a password that would be thrown away.
  withStore(values.config, 'write', ({ store }) => {
    const exists = new UserStore(store.connection).findUser(name) !== undefined;
    if (action === 'add-user' && exists)
      throw new GatewayError('USER_EXISTS', `a console user '${name}' exists already`);
    if (action === 'set-password' && !exists) throw new GatewayError('USER_NOT_FOUND', `no console user '${name}'`);
  });
  const password = await readPassword(values['password-stdin'] === true);
  checkPasswordRule(password);
  const hash = await hashPassword(password);
  return withStore(values.config, 'write', ({ store }) => {
    const users = new UserStore(store.connection);
    const trail = new AuditTrail(store.connection);
    store.connection.transaction(() => {
      const now = Date.now();
      if (action === 'add-user' && role !== undefined) {
        users.addUser(name, hash, role, now);
        audited(trail, 'user.add', target, { role }, now);
      } else {
        users.setPassword(name, hash, now);
        audited(trail, 'user.set-password', target, null, now);
      }
    })();
    process.stdout.write(
      action === 'add-user'
        ? `added console user '${name}' (${role}); they log in on the admin port\n`
        : `new password set for '${name}' (their sessions ended)\n`,
    );
    return 0;
  });
}

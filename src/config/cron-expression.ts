import cron from 'node-cron';

/**
 * The schema checks cron expressions with the same parser that maintenance schedules them with; it lives
 * here so that validating a config file does not import the maintenance tasks.
 */
export function isValidCron(expression: string): boolean {
  return cron.validate(expression);
}

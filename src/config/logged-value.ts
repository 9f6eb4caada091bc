/** the most of a config value a log line carries: a 1 MB tenant value put and put back logged 4 MB per process */
export const LOGGED_VALUE_MAX = 500;

/** `value` for a log line: up to LOGGED_VALUE_MAX characters, then how many there were */
export function loggedValue(value: string | undefined): string | undefined {
  if (value === undefined || value.length <= LOGGED_VALUE_MAX) return value;
  return `${value.slice(0, LOGGED_VALUE_MAX)}… (${value.length} characters)`;
}

/** base64url without padding, over bytes; runtime-neutral (btoa/atob). */
export function bytesToBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * undefined for anything that is not base64url as `bytesToBase64Url` writes it: a last character
 * whose unused bits are set (`…c` and `…d` can decode alike) is refused, so one byte string has
 * one spelling, as the JWT verifier's
 */
export function base64UrlToBytes(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  try {
    const binary = atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytesToBase64Url(bytes) === text ? bytes : undefined;
  } catch {
    return undefined;
  }
}

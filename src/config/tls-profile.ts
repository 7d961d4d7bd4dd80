/**
 * The one TLS profile of every link the gateway protects (DICOM SCP and SCU, MLLP, the admin port, syslog):
 * DICOM PS3.15 B.9's BCP 195 profile (RFC 7525 section 4.2). TLS 1.2 at least; for 1.2, ECDHE key exchange with
 * AES-GCM or ChaCha20-Poly1305 only, so no RSA key transport and no CBC. The TLS 1.3 suites (all AEAD) are named
 * too, so that the list states the whole profile whatever Node does with a list that lacks them.
 */
export const BCP195_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const TLS_MIN_VERSION = 'TLSv1.2' as const;

/** For tls.createServer / tls.connect / https options: the profile above, the server's cipher order first. */
export const TLS_PROFILE = { minVersion: TLS_MIN_VERSION, ciphers: BCP195_CIPHERS, honorCipherOrder: true } as const;

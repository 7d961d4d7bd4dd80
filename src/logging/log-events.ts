// The catalogue of log events: every info, warn and error line of the daemon carries one of these codes in its
// `event` field (Logger in logger.ts makes a line without one a compile error). The message stays prose for the
// person reading the log; the code is what alerting rules, dashboards and tests match, so rewording a message
// breaks nothing. Modelled on MONAI Informatics Gateway's numbered log events.
//
// One number range per stage of the data's trip (docs/log-events.md lists them all):
//   DIMSE-1xxx     DICOM network: the listener and its associations (10xx), outbound C-STORE (11xx), storage commitment (12xx)
//   STORE-2xxx     durable store: spool files and the job store
//   ASSEMBLY-3xxx  study assembly
//   PIPELINE-4xxx  routing and the pipeline's job state machine
//   ANALYSIS-5xxx  the inference pool and its per-image results
//   EXPORT-6xxx    deliveries to PACS and RIS
//   GATEWAY-7xxx   the daemon's lifecycle, admin endpoints, library output
//   MAINT-8xxx     scheduled maintenance
//   CONFIG-9xxx    configuration and reloads
// A code is never reused for another meaning; a retired code is deleted, not renumbered. Each code has exactly one
// level: a line that warrants another level is another event.

export type LogEventLevel = 'error' | 'warn' | 'info';

export interface LogEventSpec {
  readonly level: LogEventLevel;
  readonly meaning: string;
}

export const LOG_EVENTS = {
  // DIMSE: inbound (the Storage SCP)
  'DIMSE-1000': { level: 'info', meaning: 'The DICOM listener is bound and accepts associations.' },
  'DIMSE-1001': { level: 'info', meaning: 'An association was accepted.' },
  'DIMSE-1002': {
    level: 'info',
    meaning: 'The connection of an accepted association closed (released, aborted or dropped).',
  },
  'DIMSE-1003': {
    level: 'warn',
    meaning:
      'An association request was rejected (unknown AE title, too many associations, shutting down, malformed request).',
  },
  'DIMSE-1004': { level: 'info', meaning: 'The peer aborted the association (A-ABORT).' },
  'DIMSE-1005': {
    level: 'warn',
    meaning: 'The peer closed the TCP connection of an accepted association without releasing it.',
  },
  'DIMSE-1006': { level: 'warn', meaning: 'The association was aborted because of a protocol error.' },
  'DIMSE-1007': { level: 'warn', meaning: 'An association stayed idle longer than the idle timeout and was aborted.' },
  'DIMSE-1008': { level: 'warn', meaning: 'A connection was refused: too many associations from one address.' },
  'DIMSE-1009': { level: 'error', meaning: 'A new connection could not be set up and was closed.' },
  'DIMSE-1010': { level: 'error', meaning: 'Handling a connection failed unexpectedly; the connection was closed.' },
  'DIMSE-1011': { level: 'error', meaning: 'The DICOM listener socket reported an error.' },
  'DIMSE-1020': { level: 'info', meaning: 'An instance was stored durably and acknowledged (C-STORE success).' },
  'DIMSE-1021': { level: 'info', meaning: 'An instance already stored was received again and acknowledged.' },
  'DIMSE-1022': {
    level: 'warn',
    meaning: 'A C-STORE was refused with a failure status (e.g. disk full, unreadable data set).',
  },
  'DIMSE-1023': {
    level: 'error',
    meaning: 'Storing an instance failed unexpectedly; the C-STORE was answered with a processing failure.',
  },
  'DIMSE-1024': { level: 'warn', meaning: 'The peer went away during a C-STORE; the partial instance was discarded.' },
  'DIMSE-1025': { level: 'error', meaning: 'A partial instance could not be discarded.' },
  'DIMSE-1026': { level: 'warn', meaning: 'A DIMSE message that is not a request we answer was ignored.' },
  'DIMSE-1027': { level: 'warn', meaning: 'A DIMSE request for an operation we do not offer was refused (0x0211).' },
  // DIMSE: outbound (the Storage SCU)
  'DIMSE-1101': { level: 'warn', meaning: 'An instance was not sent: its file could not be read.' },
  'DIMSE-1102': { level: 'warn', meaning: 'A DICOM transfer to a peer failed.' },
  'DIMSE-1103': {
    level: 'warn',
    meaning: 'An instance was not sent: the peer accepted no presentation context for it.',
  },
  'DIMSE-1104': {
    level: 'info',
    meaning: 'The peer did not accept the object in its own transfer syntax; it is re-encoded.',
  },
  'DIMSE-1105': { level: 'warn', meaning: 'The peer stored an instance with a warning status.' },
  'DIMSE-1106': { level: 'warn', meaning: 'The peer answered a C-STORE with a failure status.' },
  'DIMSE-1107': {
    level: 'warn',
    meaning: 'The association did not end with a release, though every instance was answered.',
  },
  // DIMSE: storage commitment (issue 19), as SCU of the Push Model and receiver of its reports
  'DIMSE-1201': {
    level: 'info',
    meaning: 'Storage commitment was requested (N-ACTION) and the PACS accepted the request.',
  },
  'DIMSE-1202': {
    level: 'info',
    meaning: 'A storage commitment report (N-EVENT-REPORT) said every object of a transaction is committed.',
  },
  'DIMSE-1203': {
    level: 'warn',
    meaning: 'A storage commitment report (N-EVENT-REPORT) listed objects the PACS did not commit.',
  },
  'DIMSE-1204': {
    level: 'warn',
    meaning:
      'A storage commitment report arrived for no waiting transaction (late, or after a restart); it was answered success.',
  },
  'DIMSE-1205': {
    level: 'warn',
    meaning: 'A storage commitment report could not be read; it was answered with a failure status.',
  },
  'DIMSE-1206': {
    level: 'warn',
    meaning:
      'A storage commitment request (N-ACTION) failed: no association, no accepted context, or a failure status.',
  },
  'DIMSE-1207': {
    level: 'warn',
    meaning: "No storage commitment report arrived within the destination's storageCommitment.timeoutSeconds.",
  },
  'DIMSE-1208': {
    level: 'info',
    meaning:
      'A storage commitment report for a transaction no one waits for on this node was kept in the store for the node that waits (a cluster on PostgreSQL).',
  },
  'DIMSE-1209': {
    level: 'warn',
    meaning: 'Storage commitment reports kept in the store that no node took within a day were deleted: how many.',
  },
  'DIMSE-1210': {
    level: 'warn',
    meaning:
      'A node waiting for storage commitment reports could not look in the store, or a kept report could not be read (that delivery times out and is retried).',
  },
  // DIMSE: DICOM TLS (issue 17)
  'DIMSE-1401': {
    level: 'warn',
    meaning:
      'A TLS handshake on the DICOM TLS listener failed (untrusted or missing client certificate, no common cipher).',
  },
  'DIMSE-1402': { level: 'info', meaning: 'The DICOM TLS certificate, key and CA files were re-read (SIGHUP).' },
  'DIMSE-1403': {
    level: 'error',
    meaning: 'The DICOM TLS files could not be re-read; the listener keeps its current certificate.',
  },
  'DIMSE-1404': { level: 'error', meaning: 'An audit event could not be recorded; DICOM traffic goes on.' },
  // STORE
  'STORE-2001': {
    level: 'info',
    meaning: 'The job store is open: its engine and place (never a password), counts of studies receiving and ready.',
  },
  'STORE-2002': {
    level: 'info',
    meaning: 'Partial transfers left by an earlier stop (never acknowledged) were removed.',
  },
  'STORE-2003': { level: 'warn', meaning: 'A spool file that no row points at could not be removed.' },
  'STORE-2004': { level: 'warn', meaning: 'The start-up sweep removed spool files that were never acknowledged.' },
  'STORE-2005': { level: 'error', meaning: 'The start-up sweep found received instances whose spool file is missing.' },
  'STORE-2010': { level: 'info', meaning: 'A late instance reopened a study that already had a job.' },
  'STORE-2011': {
    level: 'error',
    meaning: 'An instance could not be stored; nothing was acknowledged and its file was removed.',
  },
  'STORE-2012': { level: 'warn', meaning: "An instance's text attributes were decoded with fallbacks." },
  'STORE-2013': {
    level: 'info',
    meaning: "The spool's cluster marker was written (a new spool) or adopted (a spool from before the marker).",
  },
  // ASSEMBLY
  'ASSEMBLY-3001': { level: 'info', meaning: 'A study was quiet long enough: it is assembled and its job is ready.' },
  'ASSEMBLY-3002': { level: 'warn', meaning: 'A study assembly sweep failed; it runs again.' },
  // PIPELINE
  'PIPELINE-4001': { level: 'info', meaning: 'A job matched a routing rule.' },
  'PIPELINE-4002': { level: 'info', meaning: 'A job matched no routing rule (or a rule that ignores it).' },
  'PIPELINE-4003': { level: 'warn', meaning: 'A job waits: the model its rule names is not loaded.' },
  'PIPELINE-4004': { level: 'warn', meaning: "No disk space for a job's outputs: it waits and is tried again." },
  'PIPELINE-4005': { level: 'info', meaning: 'A job failed: none of its images could be processed.' },
  'PIPELINE-4006': { level: 'info', meaning: 'A job was ignored: it has no eligible image.' },
  'PIPELINE-4007': { level: 'info', meaning: "A job's outputs are written and its deliveries queued." },
  'PIPELINE-4008': { level: 'error', meaning: 'A pipeline pass failed unexpectedly; it runs again on the next event.' },
  'PIPELINE-4009': {
    level: 'warn',
    meaning: 'The shutdown deadline was reached: deliveries in flight are aborted and stay pending.',
  },
  'PIPELINE-4010': {
    level: 'error',
    meaning:
      "An image failed: its stored attributes cannot be read (STORED_JSON_INVALID); the job's other images go on.",
  },
  'PIPELINE-4011': {
    level: 'error',
    meaning: 'A job failed: its stored state (rule action or an image result) cannot be read (STORED_JSON_INVALID).',
  },
  // Nodes that share work (issue 20)
  'PIPELINE-4012': {
    level: 'warn',
    meaning:
      'This node lost the lease on a job or delivery (another node took it over after the lease ran out): its late result is dropped.',
  },
  'PIPELINE-4013': {
    level: 'warn',
    meaning: "This node's heartbeat (its row and the renewal of its leases) failed; it is tried again at the next one.",
  },
  'PIPELINE-4014': { level: 'info', meaning: 'This node joined the cluster: its name, roles and lease timings.' },
  'PIPELINE-4015': {
    level: 'info',
    meaning: "This node took over a job whose holder's lease ran out (that node died or hung): the job and both nodes.",
  },
  'PIPELINE-4016': {
    level: 'warn',
    meaning:
      "The heartbeat gave back leases held under this node's name that it no longer works on (their release had failed, e.g. with the disk full): how many; the work is claimable again.",
  },
  // ANALYSIS
  'ANALYSIS-5001': { level: 'info', meaning: 'The inference pool is ready (engine, device, workers, model).' },
  'ANALYSIS-5002': { level: 'info', meaning: 'An inference backend was skipped while choosing one.' },
  'ANALYSIS-5003': { level: 'error', meaning: 'An inference worker crashed; it will be replaced.' },
  'ANALYSIS-5004': { level: 'info', meaning: 'A crashed inference worker was replaced.' },
  'ANALYSIS-5005': { level: 'error', meaning: 'An inference worker could not be replaced; trying again.' },
  'ANALYSIS-5006': {
    level: 'error',
    meaning: 'A model directory is missing: studies routed to it are stored but not processed.',
  },
  'ANALYSIS-5010': { level: 'info', meaning: 'An image was classified and explained; its outputs are written.' },
  'ANALYSIS-5011': {
    level: 'warn',
    meaning: 'An image failed (undecodable, ineligible pixels...); the job goes on without it.',
  },
  'ANALYSIS-5012': { level: 'error', meaning: 'Processing images failed unexpectedly; the job stays pending.' },
  'ANALYSIS-5013': {
    level: 'error',
    meaning: 'An image crashed the inference worker every time it was tried (a poison image): it failed.',
  },
  'ANALYSIS-5014': {
    level: 'warn',
    meaning: 'An inference worker crashed while holding images; they are tried again one by one.',
  },
  'ANALYSIS-5015': {
    level: 'info',
    meaning: 'An inference engine was chosen (engine, device, and why earlier ones were passed over).',
  },
  'ANALYSIS-5016': {
    level: 'info',
    meaning: 'An inference engine or ONNX Runtime execution provider was skipped while choosing one, with why.',
  },
  'ANALYSIS-5017': {
    level: 'info',
    meaning: 'A heatmap SC was scaled down to fit secondaryCapture.maxBytes (sizes before and after).',
  },
  'ANALYSIS-5018': {
    level: 'info',
    meaning: 'No model was loaded: this node does not have the analyze role (cluster.roles).',
  },
  // EXPORT
  'EXPORT-6001': { level: 'info', meaning: 'Objects were stored in a PACS destination.' },
  'EXPORT-6002': { level: 'info', meaning: 'A result was reported to a RIS destination.' },
  'EXPORT-6003': { level: 'warn', meaning: 'A delivery failed; it will be retried.' },
  'EXPORT-6004': { level: 'error', meaning: 'A delivery was parked for an admin: it will not be retried by itself.' },
  'EXPORT-6005': {
    level: 'error',
    meaning: 'Deliveries to a destination have been failing longer than delivery.alertAfterMinutes.',
  },
  'EXPORT-6010': { level: 'warn', meaning: 'A folder delivery failed (it will be retried).' },
  'EXPORT-6011': {
    level: 'warn',
    meaning: 'A folder delivery was parked: some objects or messages can never be written there.',
  },
  'EXPORT-6012': {
    level: 'warn',
    meaning: 'The RIS did not accept an HL7 message (negative, missing or unexpected ACK); it is retried or parked.',
  },
  'EXPORT-6013': { level: 'warn', meaning: 'A destination removed by a reload did not stop cleanly.' },
  // EXPORT 64xx: transport security (MLLP over TLS, the admin port's HTTPS)
  'EXPORT-6401': {
    level: 'warn',
    meaning:
      'The TLS handshake with a RIS failed (certificate not trusted, ours refused, no common protocol); it is retried.',
  },
  'EXPORT-6402': {
    level: 'warn',
    meaning: "A RIS destination's TLS file could not be read again for a new connection; the copy read before is used.",
  },
  'EXPORT-6403': {
    level: 'error',
    meaning: 'An audit event (a RIS delivery, a TLS failure) could not be written to the audit trail.',
  },
  'EXPORT-6420': { level: 'info', meaning: "The admin port's HTTPS certificate and key were read again (SIGHUP)." },
  'EXPORT-6421': {
    level: 'error',
    meaning: "The admin port's HTTPS certificate or key could not be read again; the previous ones stay in use.",
  },
  // GATEWAY
  'GATEWAY-7001': { level: 'info', meaning: 'The daemon is starting (version, config, pid).' },
  'GATEWAY-7002': {
    level: 'info',
    meaning: 'A stop signal arrived: no new associations; transfers in progress finish.',
  },
  'GATEWAY-7003': { level: 'info', meaning: 'The daemon stopped.' },
  'GATEWAY-7004': { level: 'error', meaning: 'An error occurred while stopping.' },
  'GATEWAY-7005': { level: 'error', meaning: 'The daemon could not start.' },
  'GATEWAY-7006': { level: 'error', meaning: 'A stage did not stop cleanly.' },
  'GATEWAY-7007': {
    level: 'info',
    meaning: 'Every stage stopped (with the time taken and any overrun of the deadline).',
  },
  'GATEWAY-7010': { level: 'info', meaning: 'The admin endpoints are listening (the URL of /healthz).' },
  'GATEWAY-7011': { level: 'error', meaning: 'An admin request failed unexpectedly.' },
  'GATEWAY-7020': {
    level: 'warn',
    meaning: 'A library (dcmjs, console output) printed a warning or error, captured into the log.',
  },
  // ADMIN-71xx: the operations console's HTTP side (src/admin/admin-server.ts, src/admin/http)
  'ADMIN-7101': { level: 'info', meaning: 'A console user logged in.' },
  'ADMIN-7102': {
    level: 'warn',
    meaning: 'A console login failed (unknown user or wrong password); the password is never logged.',
  },
  'ADMIN-7103': {
    level: 'warn',
    meaning: 'Console logins were refused for a while: too many failures for the user name or the address.',
  },
  'ADMIN-7104': { level: 'info', meaning: 'A console user logged out.' },
  'ADMIN-7105': {
    level: 'warn',
    meaning: 'A state-changing console request was refused: its CSRF token was missing or wrong.',
  },
  'ADMIN-7106': { level: 'warn', meaning: 'A console action was refused: the user has the viewer role.' },
  // MAINT
  'MAINT-8001': { level: 'error', meaning: 'A scheduled task failed; it runs again at its next time.' },
  'MAINT-8002': { level: 'warn', meaning: 'The shutdown deadline was reached with a scheduled task still running.' },
  'MAINT-8003': { level: 'info', meaning: 'Retention deleted finished studies from the spool.' },
  'MAINT-8004': { level: 'info', meaning: 'The daily summary of counts.' },
  'MAINT-8005': {
    level: 'error',
    meaning: 'Free disk space is below storage.minFreeDiskMB: C-STOREs are being refused.',
  },
  'MAINT-8006': {
    level: 'warn',
    meaning: 'Free disk space is low: C-STOREs will be refused below storage.minFreeDiskMB.',
  },
  // CONFIG
  'CONFIG-9001': {
    level: 'warn',
    meaning: 'A configuration option is ignored (e.g. a removed option); the daemon runs on.',
  },
  'CONFIG-9002': { level: 'error', meaning: 'A configuration reload was refused; the running configuration is kept.' },
  'CONFIG-9003': { level: 'error', meaning: 'A configuration reload was refused: a new destination could not start.' },
  'CONFIG-9004': { level: 'info', meaning: 'A configuration reload was applied.' },
  'CONFIG-9005': {
    level: 'warn',
    meaning:
      'A security warning about the configuration (open listener, plain DICOM off loopback, TLS off or unverified, readable key file, plain-HTTP admin port); check-config prints the same.',
  },
  // ADMIN-72xx: the operations console's service (admin/console-service.ts, gateway wiring)
  'ADMIN-7201': {
    level: 'info',
    meaning: 'Parked deliveries were released from the console; the pipeline sends them now.',
  },
  'ADMIN-7202': { level: 'info', meaning: 'A parked delivery was discarded from the console with a reason.' },
  'ADMIN-7203': {
    level: 'info',
    meaning: 'A study was queued for reprocessing as a new revision from the console (running rules and models).',
  },
  'ADMIN-7204': { level: 'info', meaning: 'A destination was echoed from the console; the line gives the outcome.' },
  'ADMIN-7205': {
    level: 'info',
    meaning: 'A rule set was applied from the console: config file written (previous kept as a backup) and reloaded.',
  },
  'ADMIN-7206': { level: 'warn', meaning: 'Applying a rule set from the console was refused; nothing changed.' },
  'ADMIN-7207': {
    level: 'info',
    meaning: 'A cluster node was drained (or let claim work again) from the console; what it still holds.',
  },
  'ADMIN-7208': {
    level: 'error',
    meaning: "The store watch could not read the job store's data_version; changes by the CLI wait for the next event.",
  },
  // Audit messages to the hospital's audit repository (issue 17)
  'GATEWAY-7501': {
    level: 'info',
    meaning: 'The audit forwarder started: audit rows go to the syslog audit repository (transport, host, port).',
  },
  'GATEWAY-7502': {
    level: 'warn',
    meaning: 'The audit repository cannot be reached or refused TLS; audit rows wait in the job store and are retried.',
  },
  'GATEWAY-7503': {
    level: 'info',
    meaning: 'The audit repository is reachable again; the audit rows that waited are being sent.',
  },
  'GATEWAY-7504': {
    level: 'error',
    meaning: 'An audit row could not be made into a message that fits its transport; it is skipped (its id is given).',
  },
} as const satisfies Record<string, LogEventSpec>;

export type LogEvent = keyof typeof LOG_EVENTS;

/** The codes whose level is `L`: Logger.info takes only info events, and so on. */
export type LogEventAt<L extends LogEventLevel> = {
  [K in LogEvent]: (typeof LOG_EVENTS)[K]['level'] extends L ? K : never;
}[LogEvent];

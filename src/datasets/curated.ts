// What Cloudflare's field reference cannot say, in one reviewed place. `npm run schemas` joins it
// with the reference (schemas/reference/datasets.json) into schemas/<dataset>.json; edit this
// file, not the generated schemas. The generator refuses a name here that the reference lacks, so
// a field Cloudflare renames cannot silently lose its annotation.

export interface CuratedDataset {
  /**
   * The field that says when the event happened: @timestamp in Elasticsearch, `time` for Splunk.
   * Chosen from the reference's descriptions; where a dataset has several timestamps, the one that
   * every line carries and that dates the event itself (a request's start, a session's start).
   */
  readonly eventTime: string
  /** Fields whose values are IP addresses (strings, or arrays of strings): indexed as `ip`. */
  readonly ip?: readonly string[]
  /** A title for humans; the dataset id otherwise. */
  readonly title: string
}

export const curated: Readonly<Record<string, CuratedDataset>> = {
  access_requests: { title: 'Cloudflare Access requests', eventTime: 'CreatedAt', ip: ['IPAddress'] },
  account_abuse_protection_events: { title: 'Cloudflare account abuse protection events', eventTime: 'Timestamp', ip: ['ClientIP'] },
  audit_logs: { title: 'Cloudflare audit logs', eventTime: 'When', ip: ['ActorIP'] },
  audit_logs_v2: { title: 'Cloudflare audit logs (v2)', eventTime: 'ActionTimestamp', ip: ['ActorIPAddress'] },
  biso_user_actions: { title: 'Cloudflare Browser Isolation user actions', eventTime: 'Timestamp' },
  casb_findings: { title: 'Cloudflare CASB findings', eventTime: 'DetectedTimestamp' },
  device_posture_results: { title: 'Cloudflare device posture results', eventTime: 'Timestamp' },
  // TracerouteTimeEnd is only set for traceroute tests; Timestamp is every test's start.
  dex_application_tests: {
    title: 'Cloudflare DEX application tests',
    eventTime: 'Timestamp',
    ip: ['HTTPClientIPAddress', 'HTTPServerIPAddress', 'TracerouteDestinationIPAddress', 'TracerouteSourceIPAddress']
  },
  dex_device_state_events: {
    title: 'Cloudflare DEX device state events',
    eventTime: 'Timestamp',
    ip: ['DeviceIPv4Address', 'DeviceIPv6Address', 'GatewayIPv4Address', 'GatewayIPv6Address', 'ISPIPv4Address', 'ISPIPv6Address']
  },
  dlp_forensic_copies: { title: 'Cloudflare DLP forensic copies', eventTime: 'Datetime' },
  dns_firewall_logs: { title: 'Cloudflare DNS Firewall logs', eventTime: 'Timestamp', ip: ['SourceIP', 'UpstreamIP'] },
  dns_logs: { title: 'Cloudflare authoritative DNS logs', eventTime: 'Timestamp', ip: ['SourceIP'] },
  email_security_alerts: { title: 'Cloudflare Email Security alerts', eventTime: 'Timestamp', ip: ['SMTPHeloServerIP'] },
  // RequestedAt: set on every line; CompletedAt is empty while the action is still running, and
  // MessageTimestamp dates the original message, not this event.
  email_security_post_delivery_events: { title: 'Cloudflare Email Security post-delivery events', eventTime: 'RequestedAt' },
  firewall_events: { title: 'Cloudflare firewall events', eventTime: 'Datetime', ip: ['ClientIP'] },
  // CustomResolverAddress is "IP:port", not an IP.
  gateway_dns: {
    title: 'Cloudflare Gateway DNS',
    eventTime: 'Datetime',
    ip: ['AuthoritativeNameServerIPs', 'DstIP', 'InitialResolvedIPs', 'ResolvedIPs', 'SrcIP']
  },
  gateway_http: { title: 'Cloudflare Gateway HTTP', eventTime: 'Datetime', ip: ['DestinationIP', 'SourceIP', 'SourceInternalIP'] },
  gateway_network: { title: 'Cloudflare Gateway network', eventTime: 'Datetime', ip: ['DestinationIP', 'OverrideIP', 'SourceIP', 'SourceInternalIP'] },
  http_requests: { title: 'Cloudflare HTTP requests', eventTime: 'EdgeStartTimestamp', ip: ['ClientIP', 'EdgeServerIP', 'OriginIP'] },
  ipsec_logs: { title: 'Cloudflare IPsec logs', eventTime: 'Timestamp', ip: ['LocalIP', 'RemoteIP'] },
  magic_bgp_logs: { title: 'Cloudflare Magic BGP logs', eventTime: 'EventTimestamp' },
  magic_ids_detections: { title: 'Cloudflare Magic IDS detections', eventTime: 'Timestamp', ip: ['DestinationIP', 'SourceIP'] },
  mcp_portal_logs: { title: 'Cloudflare MCP portal logs', eventTime: 'Datetime', ip: ['ClientIP'] },
  // FlowTimestamp is the exporter's clock for the flow; Timestamp is the event's.
  mnm_flow_logs: { title: 'Cloudflare Magic Network Monitoring flow logs', eventTime: 'Timestamp', ip: ['DestinationAddress', 'SamplerAddress', 'SourceAddress'] },
  nel_reports: { title: 'Cloudflare Network Error Logging reports', eventTime: 'Timestamp' },
  network_analytics_logs: { title: 'Cloudflare Network Analytics (Magic Transit, Spectrum, DDoS) packet samples', eventTime: 'Datetime', ip: ['IPDestinationAddress', 'IPSourceAddress'] },
  page_shield_events: { title: 'Cloudflare Page Shield events', eventTime: 'Timestamp' },
  sinkhole_http_logs: { title: 'Cloudflare sinkhole HTTP logs', eventTime: 'Timestamp', ip: ['DestAddr', 'SrcAddr'] },
  // ConnectTimestamp / DisconnectTimestamp are empty for events other than connect/disconnect.
  spectrum_events: { title: 'Cloudflare Spectrum events', eventTime: 'Timestamp', ip: ['ClientIP', 'OriginIP'] },
  // ClientAddress / ServerAddress may carry a port: kept as keywords.
  ssh_logs: { title: 'Cloudflare SSH command logs', eventTime: 'Datetime' },
  turnstile_events: { title: 'Cloudflare Turnstile events', eventTime: 'Timestamp', ip: ['ClientIP'] },
  warp_config_changes: { title: 'Cloudflare WARP configuration changes', eventTime: 'Timestamp' },
  warp_toggle_changes: { title: 'Cloudflare WARP toggle changes', eventTime: 'Timestamp' },
  websocket_analytics: { title: 'Cloudflare WebSocket analytics', eventTime: 'EdgeStartTimestamp', ip: ['ClientIP'] },
  // Its only time is a plain epoch-milliseconds integer, whatever the job's timestamp_format.
  workers_trace_events: { title: 'Cloudflare Workers trace events', eventTime: 'EventTimestampMs' },
  zaraz_events: { title: 'Cloudflare Zaraz events', eventTime: 'TimestampStart', ip: ['IP'] },
  zero_trust_network_sessions: {
    title: 'Cloudflare Zero Trust network sessions',
    eventTime: 'SessionStartTime',
    ip: ['EgressIP', 'InitialOriginIP', 'OriginIP', 'SourceIP', 'SourceInternalIP']
  }
}

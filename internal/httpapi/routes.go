package httpapi

import (
	"net/http"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/device"
	"github.com/privicore/privicore/internal/profile"
	"github.com/privicore/privicore/internal/voting"
)

// Handler returns the API with every route. The WebSocket channel proxy is
// also served at /ws. Each line: method and path, who may call (the
// profile's state and the OAuth scope an application token needs;
// profile.ProfileOnly: the profile's own token only), handler.
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		panic("httpapi: Server.Logger is nil")
	}
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, s.bodyFirst(pattern, h)) }

	// §1 WebSocket channel proxy and command status.
	if s.Channels != nil {
		handle("GET /ws", s.Channels)
	}
	handle("GET /request-status/{commandId}", s.optionalAuth(s.requestStatus))
	handle("POST /request-status/{commandId}", s.optionalAuth(s.requestStatus))
	handle("GET /utility/request-command-id-status/{commandId}", s.optionalAuth(s.commandIDStatus))

	// §2 Utility.
	handle("GET /health", http.HandlerFunc(s.health))
	handle("GET /utility/check-server-health", http.HandlerFunc(s.health))

	// §3 Profile.
	handle("POST /profile/register-profile", http.HandlerFunc(s.registerProfile))
	handle("POST /profile/authenticate", http.HandlerFunc(s.authenticate))
	handle("GET /profile/retrieve-profile-id", s.authed(anyProfile, privicore.ScopeProfileRead, s.retrieveProfileID))
	handle("POST /profile/change-password", s.authed(activeProfile, profile.ProfileOnly, s.changePassword))
	handle("POST /profile/generate-token-qr", s.authed(activeProfile, profile.ProfileOnly, s.generateQRToken))
	handle("POST /profile/generate-qr-token-for-authorization", s.authed(activeProfile, profile.ProfileOnly, s.generateQRToken))
	handle("POST /profile/reauthorize-authorization-token", s.authed(activeProfile, profile.ProfileOnly, s.reauthorize))
	handle("POST /profile/revoke-authorization-token", s.authed(anyProfile, profile.AnyScope, s.revoke))
	handle("POST /profile/authorization-token/expiry", s.authed(anyProfile, profile.AnyScope, s.tokenExpiry))
	handle("GET /profile/retrieve-token-expiry", s.authed(anyProfile, profile.AnyScope, s.tokenExpiry))
	// The older four-step flow.
	handle("POST /profile/attempt-authentication", http.HandlerFunc(s.attemptAuthentication))
	handle("POST /profile/retrieve-temp-token", http.HandlerFunc(s.retrieveTempToken))
	handle("POST /profile/request-authorization-token", http.HandlerFunc(s.requestAuthorizationToken))
	handle("POST /profile/retrieve-authorization-token", http.HandlerFunc(s.retrieveAuthorizationToken))

	// §4 Public key.
	handle("GET /generate-keys", http.HandlerFunc(s.generateKeys))
	handle("GET /public-key/generate-keys", http.HandlerFunc(s.generateKeys))
	handle("POST /public-key/register-public-key", http.HandlerFunc(s.registerPublicKey))
	handle("GET /public-key/retrieve-public-key", s.authed(activeProfile, privicore.ScopeProfileRead, s.retrievePublicKey))
	handle("GET /dptcab/public-key", s.authed(activeProfile, privicore.ScopeProfileRead, s.engineKey))
	handle("GET /public-key/retrieve-cab-public-key", s.authed(activeProfile, privicore.ScopeProfileRead, s.engineKey))

	// §5 OAuth applications: the owner's side (profile tokens only), then the
	// application's (HTTP Basic: client credentials, a code or an access token).
	handle("POST /profile/oauth-application-register", s.authed(activeProfile, profile.ProfileOnly, s.registerOAuthApplication))
	handle("POST /profile/retrieve-oauth-application-configuration", s.authed(activeProfile, profile.ProfileOnly, s.retrieveOAuthConfiguration))
	handle("GET /profile/oauth-application-request-authorization-code", s.authed(activeProfile, profile.ProfileOnly, s.requestAuthorizationCode))
	handle("GET /profile/retrieve-oauth-application-list", s.authed(activeProfile, profile.ProfileOnly, s.listOAuthApplications))
	handle("GET /profile/retrieve-oauth-application-scope/{applicationId}", s.authed(activeProfile, profile.ProfileOnly, s.applicationScopeByID))
	handle("POST /profile/oauth-application-remove", s.authed(activeProfile, profile.ProfileOnly, s.removeOAuthApplication))
	handle("POST /oauth-application/retrieve-authorization-code", http.HandlerFunc(s.retrieveAuthorizationCode))
	handle("POST /oauth-application/obtain-access-token", http.HandlerFunc(s.obtainAccessToken))
	handle("POST /oauth-application/refresh-access-token", http.HandlerFunc(s.refreshAccessToken))
	handle("POST /oauth-application/retrieve-oauth-application-scope", http.HandlerFunc(s.tokenScope))

	// §6 Devices.
	handle("POST /device/request-unique-identifier", s.authedOrQR(privicore.ScopeDeviceWrite, s.requestUniqueIdentifier))
	handle("POST /device/retrieve-unique-identifier", s.authedOrQR(privicore.ScopeDeviceRead, s.retrieveUniqueIdentifier))
	handle("GET /device/retrieve-device-id/{commandId}", s.authedOrQR(privicore.ScopeDeviceRead, s.retrieveUniqueIdentifier))
	handle("GET /device/retrieve-profile-devices", s.authed(activeProfile, privicore.ScopeDeviceRead, s.profileDevices))
	handle("POST /device/configure-meta", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.configureDeviceMeta))
	handle("POST /device/configure-device-meta", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.configureDeviceMeta))
	handle("POST /device/approve-device", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceCommand(device.CmdApprove, "")))
	handle("POST /device/reject-device", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceCommand(device.CmdReject, "")))
	handle("GET /device/retrieve-device-configuration/{deviceIdentifier}", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceConfiguration))
	handle("POST /device/download-device-configuration", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceConfiguration))
	handle("POST /device/remove", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceCommand(device.CmdRemove, "")))
	handle("POST /device/remove-device", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceCommand(device.CmdRemove, "")))

	// §7 Storage devices.
	handle("POST /storage/register", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceCommand(device.CmdAssignRole, privicore.RoleStorage)))
	handle("POST /storage/register-storage-device", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceCommand(device.CmdAssignRole, privicore.RoleStorage)))
	handle("POST /storage/remove", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceCommand(device.CmdDropRole, privicore.RoleStorage)))
	handle("POST /storage/remove-storage", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.deviceCommand(device.CmdDropRole, privicore.RoleStorage)))

	handle("GET /storage/list-storage-devices", s.authed(activeProfile, privicore.ScopeDeviceRead, s.listStorageDevices))
	handle("POST /storage/sync-device", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.syncStorageDevice))
	handle("POST /storage/synchronize", s.authed(activeProfile, privicore.ScopeDeviceWrite, s.syncStorageDevice))

	// §8 Data tokens.
	handle("POST /data-token/reserve-token-space", s.authed(activeProfile, privicore.ScopeDataTokenWrite, s.reserveTokenSpace))
	handle("GET /data-token/retrieve-temporary-data-token/{commandId}", s.authed(activeProfile, privicore.ScopeDataTokenWrite, s.retrieveTemporaryDataToken))
	handle("POST /data-token/exchange-data-for-token", s.authed(activeProfile, privicore.ScopeDataTokenWrite, s.exchangeDataForToken))
	handle("POST /data-token/configure-file-meta", s.authed(activeProfile, privicore.ScopeDataTokenWrite, s.configureFileMeta))
	handle("POST /data-token/request-data", s.authed(activeProfile, privicore.ScopeDataTokenRead, s.requestData))
	handle("GET /downstream/", http.HandlerFunc(s.download)) // the single-use auth query value is the credential
	handle("POST /upstream/", http.HandlerFunc(s.upload))    // likewise
	handle("POST /data-token/configure-information-security-risk-meta", s.authed(activeProfile, privicore.ScopeDataTokenWrite, s.configureRiskMeta))
	handle("GET /data-token/list-data-tokens", s.authed(activeProfile, privicore.ScopeDataTokenRead, s.listDataTokens))
	handle("POST /data-token/update-data", s.authed(activeProfile, privicore.ScopeDataTokenWrite, s.updateData))
	handle("POST /data-token/update-data-token", s.authed(activeProfile, privicore.ScopeDataTokenWrite, s.updateDataToken))
	handle("POST /data-token/delete-data", s.authed(activeProfile, privicore.ScopeDataTokenWrite, s.deleteData))
	handle("GET /data-token/transaction-count-statistics", s.authed(activeProfile, privicore.ScopeDataTokenRead, s.transactionStatistics))

	// §9 Verified authenticators, the voting strategy, voting configurations.
	handle("POST /verified-authenticator/register", s.authed(activeProfile, privicore.ScopeVotingWrite, s.deviceCommand(device.CmdAssignRole, privicore.RoleAuthenticator)))
	handle("POST /verified-authenticator/register-authenticator", s.authed(activeProfile, privicore.ScopeVotingWrite, s.deviceCommand(device.CmdAssignRole, privicore.RoleAuthenticator)))
	handle("GET /verified-authenticator/list", s.authed(activeProfile, privicore.ScopeVotingRead, s.listAuthenticators))
	handle("GET /verified-authenticator/list-verified-authenticators", s.authed(activeProfile, privicore.ScopeVotingRead, s.listAuthenticators))
	handle("POST /verified-authenticator/remove", s.authed(activeProfile, privicore.ScopeVotingWrite, s.deviceCommand(device.CmdDropRole, privicore.RoleAuthenticator)))
	handle("POST /verified-authenticator/remove-authenticator", s.authed(activeProfile, privicore.ScopeVotingWrite, s.deviceCommand(device.CmdDropRole, privicore.RoleAuthenticator)))
	handle("GET /verified-authenticator/retrieve-voting-strategy", s.authed(activeProfile, privicore.ScopeVotingRead, s.retrieveVotingStrategy))
	handle("POST /verified-authenticator/set-quorum-size", s.authed(activeProfile, privicore.ScopeVotingWrite, s.setQuorumSize()))
	handle("POST /verified-authenticator/set-quorum-strategy", s.authed(activeProfile, privicore.ScopeVotingWrite, s.setQuorumStrategy()))
	handle("POST /verified-authenticator/set-voting-time-limit", s.authed(activeProfile, privicore.ScopeVotingWrite, s.setVotingTimeLimit()))
	handle("POST /verified-authenticator/set-maximum-voting-attempts", s.authed(activeProfile, privicore.ScopeVotingWrite, s.setMaximumVotingAttempts()))
	handle("POST /verified-authenticator/voting-configuration/register", s.authed(activeProfile, privicore.ScopeVotingWrite, s.registerVotingConfiguration))
	handle("POST /verified-authenticator/voting-configuration/update", s.authed(activeProfile, privicore.ScopeVotingWrite, s.updateVotingConfiguration))
	handle("GET /verified-authenticator/voting-configuration/list", s.authed(activeProfile, privicore.ScopeVotingRead, s.listVotingConfigurations))
	handle("GET /verified-authenticator/voting-configuration/retrieve/{idOrName}", s.authed(activeProfile, privicore.ScopeVotingRead, s.retrieveVotingConfiguration))

	// §10 Policies.
	active, inactive := true, false
	handle("GET /policy/list-policy-templates", s.authed(activeProfile, privicore.ScopePolicyRead, s.listPolicyTemplates))
	handle("POST /policy/register", s.authed(activeProfile, privicore.ScopePolicyWrite, s.registerPolicy))
	handle("GET /policy/retrieve-policy/{idOrName}", s.authed(activeProfile, privicore.ScopePolicyRead, s.retrievePolicy))
	handle("GET /policy/retrieve-registered-policy/{idOrName}", s.authed(activeProfile, privicore.ScopePolicyRead, s.retrievePolicy))
	handle("GET /policy/list-registered-policies", s.authed(activeProfile, privicore.ScopePolicyRead, s.listPolicies(nil)))
	handle("GET /policy/list-active-policies", s.authed(activeProfile, privicore.ScopePolicyRead, s.listPolicies(&active)))
	handle("GET /policy/list-inactive-policies", s.authed(activeProfile, privicore.ScopePolicyRead, s.listPolicies(&inactive)))
	handle("POST /policy/activate", s.authed(activeProfile, privicore.ScopePolicyWrite, s.changePolicy(voting.CmdActivatePolicy)))
	handle("POST /policy/deactivate", s.authed(activeProfile, privicore.ScopePolicyWrite, s.changePolicy(voting.CmdDeactivatePolicy)))
	handle("POST /policy/delete", s.authed(activeProfile, privicore.ScopePolicyWrite, s.changePolicy(voting.CmdDeletePolicy)))

	// §11 Voting operations.
	handle("POST /voting/create", s.authed(activeProfile, privicore.ScopeVotingWrite, s.createVote))
	handle("POST /voting/create-voting", s.authed(activeProfile, privicore.ScopeVotingWrite, s.createVote))
	handle("GET /voting/check-pool-status/{poolId}", s.authed(activeProfile, privicore.ScopeVotingRead, s.poolStatus))
	handle("POST /voting/cancel-pool", s.authed(activeProfile, privicore.ScopeVotingWrite, s.cancelPool))

	// No catch-all route: a known path with another method must stay 405
	// (the middleware renders 404 and 405 as JSON).
	return s.middleware(mux)
}

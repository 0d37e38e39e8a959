package kvstore

import "fmt"

// Error codes, exactly as etcd v2 numbers them (spec §5). Codes that etcd
// defines but never emits are listed too, so that a client-facing layer can
// name every code the protocol knows.
const (
	CodeKeyNotFound        = 100
	CodeCompareFailed      = 101
	CodeNotFile            = 102
	CodeNoMorePeer         = 103
	CodeNotDir             = 104
	CodeNodeExist          = 105
	CodeKeyIsPreserved     = 106
	CodeRootReadOnly       = 107
	CodeDirNotEmpty        = 108
	CodeExistingPeerAddr   = 109
	CodeUnauthorized       = 110
	CodeValueRequired      = 200
	CodePrevValueRequired  = 201
	CodeTTLNaN             = 202
	CodeIndexNaN           = 203
	CodeValueOrTTLRequired = 204
	CodeTimeoutNaN         = 205
	CodeNameRequired       = 206
	CodeIndexOrValueReq    = 207
	CodeIndexValueMutex    = 208
	CodeInvalidField       = 209
	CodeInvalidForm        = 210
	CodeRefreshValue       = 211
	CodeRefreshTTLRequired = 212
	CodeRaftInternal       = 300
	CodeLeaderElect        = 301
	CodeWatcherCleared     = 400
	CodeEventIndexCleared  = 401
	CodeStandbyInternal    = 402
	CodeInvalidActiveSize  = 403
	CodeInvalidRemoveDelay = 404
	CodeClientInternal     = 500
)

// errorMessages holds etcd's message text for every code, byte for byte.
var errorMessages = map[int]string{
	CodeKeyNotFound:        "Key not found",
	CodeCompareFailed:      "Compare failed",
	CodeNotFile:            "Not a file",
	CodeNoMorePeer:         "Reached the max number of peers in the cluster",
	CodeNotDir:             "Not a directory",
	CodeNodeExist:          "Key already exists",
	CodeKeyIsPreserved:     "The prefix of given key is a keyword in etcd",
	CodeRootReadOnly:       "Root is read only",
	CodeDirNotEmpty:        "Directory not empty",
	CodeExistingPeerAddr:   "Peer address has existed",
	CodeUnauthorized:       "The request requires user authentication",
	CodeValueRequired:      "Value is Required in POST form",
	CodePrevValueRequired:  "PrevValue is Required in POST form",
	CodeTTLNaN:             "The given TTL in POST form is not a number",
	CodeIndexNaN:           "The given index in POST form is not a number",
	CodeValueOrTTLRequired: "Value or TTL is required in POST form",
	CodeTimeoutNaN:         "The given timeout in POST form is not a number",
	CodeNameRequired:       "Name is required in POST form",
	CodeIndexOrValueReq:    "Index or value is required",
	CodeIndexValueMutex:    "Index and value cannot both be specified",
	CodeInvalidField:       "Invalid field",
	CodeInvalidForm:        "Invalid POST form",
	CodeRefreshValue:       "Value provided on refresh",
	CodeRefreshTTLRequired: "A TTL must be provided on refresh",
	CodeRaftInternal:       "Raft Internal Error",
	CodeLeaderElect:        "During Leader Election",
	CodeWatcherCleared:     "watcher is cleared due to etcd recovery",
	CodeEventIndexCleared:  "The event in requested index is outdated and cleared",
	CodeStandbyInternal:    "Standby Internal Error",
	CodeInvalidActiveSize:  "Invalid active size",
	CodeInvalidRemoveDelay: "Standby remove delay",
	CodeClientInternal:     "Client Internal Error",
}

// errorStatuses maps the codes whose HTTP status is not 400 (spec §5).
var errorStatuses = map[int]int{
	CodeKeyNotFound:   404, // Not Found
	CodeCompareFailed: 412, // Precondition Failed
	CodeNotFile:       403, // Forbidden
	CodeNodeExist:     412, // Precondition Failed
	CodeDirNotEmpty:   403, // Forbidden
	CodeUnauthorized:  401, // Unauthorized
	CodeRaftInternal:  500, // Internal Server Error
	CodeLeaderElect:   500, // Internal Server Error
}

// Error is an etcd v2 error. Its JSON encoding is exactly the error body etcd
// serves (spec §4.6), so the HTTP layer can marshal it directly.
type Error struct {
	// Code is the etcd error code (CodeKeyNotFound, ...).
	Code int `json:"errorCode"`
	// Message is etcd's fixed text for Code.
	Message string `json:"message"`
	// Cause says what failed: usually a key, or a comparison such as
	// "[old != new]". Empty causes are omitted from the JSON body.
	Cause string `json:"cause,omitempty"`
	// Index is the store's current index when the error happened, or 0 for
	// errors in the request itself (bad parameters, limits).
	Index uint64 `json:"index"`
}

// NewError returns the etcd error for code with the given cause and index.
// An unknown code is a programming error and panics.
func NewError(code int, cause string, index uint64) *Error {
	message, ok := errorMessages[code]
	if !ok {
		panic(fmt.Sprintf("kvstore: unknown error code %d", code))
	}
	return &Error{Code: code, Message: message, Cause: cause, Index: index}
}

// Error formats the error the way etcd does: "message (cause)".
func (e *Error) Error() string {
	return e.Message + " (" + e.Cause + ")"
}

// StatusCode is the HTTP status etcd answers this error with: 404, 412, 403,
// 401 or 500 for the codes listed in spec §5, 400 for every other code.
func (e *Error) StatusCode() int {
	if status, ok := errorStatuses[e.Code]; ok {
		return status
	}
	return 400
}

package scan

import "time"

// Progress is a snapshot of the scanner's work, for the log, /api/scan
// and the UI.
type Progress struct {
	Running  bool      `json:"running"`
	Library  string    `json:"library,omitempty"` // being scanned now
	Started  time.Time `json:"started,omitzero"`  // of the running or last scan
	Finished time.Time `json:"finished,omitzero"` // of the last scan; zero while the first runs
	// Files counts media files seen so far; Probed those probed (new or
	// changed); Unchanged those skipped because size and mtime matched;
	// Failed those whose probe failed (they are indexed with the error);
	// Removed items whose file is gone.
	Files     int64 `json:"files"`
	Probed    int64 `json:"probed"`
	Unchanged int64 `json:"unchanged"`
	Failed    int64 `json:"failed"`
	Removed   int64 `json:"removed"`
	// Queued counts files waiting to be probed.
	Queued int64 `json:"queued"`
	// Rate is files probed per second over the scan; ETA the time left
	// to probe what is queued at that rate (0 when unknown).
	Rate float64       `json:"rate"`
	ETA  time.Duration `json:"eta_ns"`
	// Errors are the last few problems (unreadable folders, offline
	// libraries, failed probes), newest last.
	Errors []string `json:"errors,omitempty"`
}

// report.go owns the session report as the outside world sees it: the value that notifications,
// --porcelain, the metrics and the systemd status line are made from.
package main

import "time"

// sessionReport is one session's outcome, in exported fields so that a user's
// --notification-template can read it.
type sessionReport struct {
	Host       string // --notifications-hostname, else the host name
	Started    time.Time
	Duration   time.Duration
	Scanned    int
	Fresh      int
	Stale      int // stale and not updated (monitor-only, --no-restart)
	Updated    int
	RolledBack int
	Failed     int
	Skipped    int
	Containers []containerReport
	Error      string // the session could not run at all
}

// containerReport is one container's line of the report.
type containerReport struct {
	Name     string
	Image    string
	State    string // fresh, stale, skipped, failed, updated, rolled back
	Reason   string
	Current  string // digests
	Remote   string
	OldImage string // image IDs, for updates
	NewImage string
}

// Changed tells whether anything was updated, rolled back, failed or found stale: the sessions
// worth a notification.
func (r sessionReport) Changed() bool {
	return r.Updated+r.RolledBack+r.Failed+r.Stale > 0 || r.Error != ""
}

// export turns a session's results into its public report.
func (rep report) export(host string, started time.Time) sessionReport {
	out := sessionReport{Host: host, Started: started, Duration: rep.duration, Scanned: len(rep.results)}
	if rep.err != nil {
		out.Error = rep.err.Error()
	}
	for _, r := range rep.results {
		switch r.state {
		case stateFresh:
			out.Fresh++
		case stateStale:
			out.Stale++
		case stateUpdated:
			out.Updated++
		case stateRolledBack:
			out.RolledBack++
		case stateFailed:
			out.Failed++
		case stateSkipped:
			out.Skipped++
		}
		c := containerReport{Name: r.name, Image: r.image, State: r.state, Reason: r.reason, Current: r.current, Remote: r.remote}
		if r.newImage != "" {
			c.OldImage, c.NewImage = r.imageID, r.newImage
		}
		out.Containers = append(out.Containers, c)
	}
	return out
}

// schedule.go owns --schedule: parsing Watchtower's cron syntax (six fields starting with seconds,
// or a descriptor such as @daily and @every 1h) and finding the next activation in wall-clock time.
//
// The syntax is what Watchtower accepted through robfig/cron v1, so a user's existing spec keeps
// its meaning. Daylight-saving time is handled on the wall clock of the schedule's location:
//   - a wall time that does not exist that day (skipped by spring-forward) is not run that day,
//     as robfig/cron did; `0 30 2 * * *` in New York has no run on the March transition day;
//   - a wall time that occurs twice (repeated by fall-back) runs once, at its first occurrence,
//     so an hourly job does not run twice in the repeated hour.
package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// schedule is a parsed --schedule: Watchtower's 6-field cron with seconds, or @every/@hourly/@daily etc.
type schedule struct {
	loc *time.Location
	// every is the delay of an @every schedule; when it is set the cron fields are unused.
	every time.Duration
	// Bit i of a field is set when value i matches (day-of-week: 0 = Sunday).
	second, minute, hour, dom, month, dow uint64
	// domStar and dowStar record a day field written as `*` or `?`, which decides how the two
	// day fields combine (see dayMatches).
	domStar, dowStar bool
}

// cronField describes one of the six fields as the user writes it.
type cronField struct {
	name     string
	min, max int
	// top is the highest value accepted as written: 7 for day-of-week (another Sunday), else max.
	top   int
	names map[string]int
	want  string
}

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

	cronFields = [6]cronField{
		{name: "seconds", min: 0, max: 59, top: 59, want: "want 0-59"},
		{name: "minutes", min: 0, max: 59, top: 59, want: "want 0-59"},
		{name: "hours", min: 0, max: 23, top: 23, want: "want 0-23"},
		{name: "day-of-month", min: 1, max: 31, top: 31, want: "want 1-31"},
		{name: "month", min: 1, max: 12, top: 12, names: monthNames, want: "want 1-12 or JAN-DEC"},
		{name: "day-of-week", min: 0, max: 6, top: 7, names: dayNames, want: "want 0-7 or SUN-SAT"},
	}

	// descriptors are robfig/cron's shorthands, written out in the six-field syntax.
	descriptors = map[string]string{
		"@yearly":   "0 0 0 1 1 *",
		"@annually": "0 0 0 1 1 *",
		"@monthly":  "0 0 0 1 * *",
		"@weekly":   "0 0 0 * * 0",
		"@daily":    "0 0 0 * * *",
		"@midnight": "0 0 0 * * *",
		"@hourly":   "0 0 * * * *",
	}
)

const fieldOrder = "second minute hour day-of-month month day-of-week"

// parseSchedule parses spec in loc (time.Local honouring TZ; tests pass explicit locations).
// Errors name the field and the bad value, e.g. `--schedule "0 0 25 * * *": hours field "25": want 0-23`.
func parseSchedule(spec string, loc *time.Location) (*schedule, error) {
	s, err := parseSpec(strings.TrimSpace(spec))
	if err != nil {
		return nil, fmt.Errorf("--schedule %q: %w", spec, err)
	}
	s.loc = loc
	return s, nil
}

func parseSpec(spec string) (*schedule, error) {
	if spec == "" {
		return nil, errors.New("empty: want 6 fields (" + fieldOrder + ") or a descriptor such as @daily")
	}
	if strings.HasPrefix(spec, "@") {
		return parseDescriptor(spec)
	}
	fields := strings.Fields(spec)
	switch len(fields) {
	case 6:
	case 5:
		// The common mistake is a classic crontab line; Watchtower's first field is seconds.
		return nil, fmt.Errorf("5 fields, but the schedule needs a seconds field first (%s): for example %q",
			fieldOrder, "0 "+strings.Join(fields, " "))
	default:
		return nil, fmt.Errorf("%d fields, want 6: %s", len(fields), fieldOrder)
	}
	var bits [6]uint64
	var star [6]bool
	for i, f := range cronFields {
		var err error
		if bits[i], star[i], err = f.parse(fields[i]); err != nil {
			return nil, err
		}
	}
	return &schedule{
		second: bits[0], minute: bits[1], hour: bits[2], dom: bits[3], month: bits[4], dow: bits[5],
		domStar: star[3], dowStar: star[5],
	}, nil
}

func parseDescriptor(spec string) (*schedule, error) {
	words := strings.Fields(spec)
	name := strings.ToLower(words[0])
	if name == "@every" {
		if len(words) != 2 {
			return nil, errors.New(`@every needs one duration, for example "@every 1h30m"`)
		}
		d, err := time.ParseDuration(words[1])
		if err != nil {
			return nil, fmt.Errorf("@every: %w", err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("@every %s: want a positive duration", words[1])
		}
		// robfig/cron counted whole seconds and never less than one.
		return &schedule{every: max(d.Truncate(time.Second), time.Second)}, nil
	}
	fields, ok := descriptors[name]
	if !ok {
		return nil, fmt.Errorf("unknown descriptor %q: want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>", words[0])
	}
	if len(words) != 1 {
		return nil, fmt.Errorf("%s takes no argument", words[0])
	}
	return parseSpec(fields)
}

// parse turns one field (a comma-separated list of terms) into its bits, and reports whether it
// was written as `*` or `?`.
func (f cronField) parse(text string) (uint64, bool, error) {
	var bits uint64
	for _, term := range strings.Split(text, ",") {
		b, err := f.parseTerm(term)
		if err != nil {
			return 0, false, fmt.Errorf("%s field %q: %w", f.name, term, err)
		}
		bits |= b
	}
	// 7 is a second name for Sunday.
	if bits&(1<<7) != 0 && f.top == 7 {
		bits = bits&^(1<<7) | 1
	}
	return bits, text == "*" || text == "?", nil
}

// parseTerm reads `*`, `?`, `n`, `a-b`, each optionally followed by `/step`; `n/step` runs from n
// to the field's end, as in robfig/cron.
func (f cronField) parseTerm(term string) (uint64, error) {
	span, stepText, hasStep := strings.Cut(term, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepText)
		if err != nil || n < 1 {
			return 0, errors.New("want a step of at least 1")
		}
		step = n
	}
	var lo, hi int
	if span == "*" || span == "?" {
		lo, hi = f.min, f.max
	} else {
		loText, hiText, isRange := strings.Cut(span, "-")
		var err error
		if lo, err = f.value(loText); err != nil {
			return 0, err
		}
		switch {
		case isRange:
			if hi, err = f.value(hiText); err != nil {
				return 0, err
			}
		case hasStep:
			hi = f.max
		default:
			hi = lo
		}
		if lo > hi {
			return 0, fmt.Errorf("range %d-%d runs backwards: want start <= end", lo, hi)
		}
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << v
	}
	return bits, nil
}

// value reads a number or a name of the field, checked against the field's bounds.
func (f cronField) value(text string) (int, error) {
	if v, ok := f.names[strings.ToLower(text)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(text)
	if err != nil || v < f.min || v > f.top {
		return 0, errors.New(f.want)
	}
	return v, nil
}

// next returns the first activation strictly after t (in the schedule's location), or the zero time if none within 5 years.
func (s *schedule) next(t time.Time) time.Time {
	if s.every > 0 {
		return t.Add(s.every - time.Duration(t.Nanosecond())).In(s.loc)
	}
	// Search on the wall clock, written as a UTC time so that adding an hour is always an hour.
	lt := t.In(s.loc)
	w := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), lt.Second(), 0, time.UTC).Add(time.Second)
	limit := w.AddDate(5, 0, 0)
	for {
		var ok bool
		if w, ok = s.nextWall(w, limit); !ok {
			return time.Time{}
		}
		// Skipped wall times have no instant; a repeated one counts only at its first instant,
		// which lies before t when t is inside the repeated hour.
		if at, ok := firstInstant(w, s.loc); ok && at.After(t) {
			return at
		}
		w = w.Add(time.Second)
	}
}

// nextWall returns the first wall time at or after w that the fields match, if one is before limit.
func (s *schedule) nextWall(w, limit time.Time) (time.Time, bool) {
	for w.Before(limit) {
		switch {
		case s.month&(1<<w.Month()) == 0:
			w = time.Date(w.Year(), w.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(w):
			w = time.Date(w.Year(), w.Month(), w.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<w.Hour()) == 0:
			w = w.Truncate(time.Hour).Add(time.Hour)
		case s.minute&(1<<w.Minute()) == 0:
			w = w.Truncate(time.Minute).Add(time.Minute)
		case s.second&(1<<w.Second()) == 0:
			w = w.Add(time.Second)
		default:
			return w, true
		}
	}
	return time.Time{}, false
}

// dayMatches applies the cron rule: when both day fields restrict the day, either may match;
// when one is `*` or `?`, the other alone decides.
func (s *schedule) dayMatches(w time.Time) bool {
	dom := s.dom&(1<<w.Day()) != 0
	dow := s.dow&(1<<w.Weekday()) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// firstInstant returns the earliest instant at which loc's clocks read the wall time w (given in
// UTC), or false when the clocks skip it.
func firstInstant(w time.Time, loc *time.Location) (time.Time, bool) {
	u := w.Unix()
	var first time.Time
	found := false
	// Offsets in force within a day either side cover both sides of any transition near w.
	for _, probe := range []int64{u - 86400, u, u + 86400} {
		_, off := time.Unix(probe, 0).In(loc).Zone()
		at := time.Unix(u-int64(off), 0).In(loc)
		if _, inForce := at.Zone(); inForce != off {
			continue
		}
		if !found || at.Before(first) {
			first, found = at, true
		}
	}
	return first, found
}

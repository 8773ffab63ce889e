package main

import (
	"strings"
	"testing"
	"time"
)

// bitsOf sets the bit of each value.
func bitsOf(values ...int) uint64 {
	var b uint64
	for _, v := range values {
		b |= 1 << v
	}
	return b
}

// span sets the bits lo through hi.
func span(lo, hi int) uint64 {
	var b uint64
	for v := lo; v <= hi; v++ {
		b |= 1 << v
	}
	return b
}

// every field matching everything, as `* * * * * *` parses.
var anyTime = schedule{
	loc: time.UTC, second: span(0, 59), minute: span(0, 59), hour: span(0, 23),
	dom: span(1, 31), month: span(1, 12), dow: span(0, 6), domStar: true, dowStar: true,
}

// with returns anyTime changed by edit.
func with(edit func(s *schedule)) schedule {
	s := anyTime
	edit(&s)
	return s
}

func TestParseScheduleForms(t *testing.T) {
	midnight := with(func(s *schedule) { s.second, s.minute, s.hour = 1, 1, 1 })
	tests := []struct {
		spec string
		want schedule
	}{
		{"* * * * * *", anyTime},
		{"? ? ? ? ? ?", anyTime},
		{"  *\t* *  * * *  ", anyTime},
		{"0 0 4 * * *", with(func(s *schedule) { s.second, s.minute, s.hour = 1, 1, bitsOf(4) })},
		{"0 */15 * * * *", with(func(s *schedule) { s.second, s.minute = 1, bitsOf(0, 15, 30, 45) })},
		{"*/1 * * * * *", with(func(s *schedule) {})},
		{"0 0 9-17 * * *", with(func(s *schedule) { s.second, s.minute, s.hour = 1, 1, span(9, 17) })},
		{"0 0 8-18/4 * * *", with(func(s *schedule) { s.second, s.minute, s.hour = 1, 1, bitsOf(8, 12, 16) })},
		{"5/20 * * * * *", with(func(s *schedule) { s.second = bitsOf(5, 25, 45) })},
		{"1,2,10-14/2,30 * * * * *", with(func(s *schedule) { s.second = bitsOf(1, 2, 10, 12, 14, 30) })},
		{"0 0 0 1,15,31 * *", with(func(s *schedule) {
			*s = midnight
			s.dom, s.domStar = bitsOf(1, 15, 31), false
		})},
		{"0 0 0 */10 * *", with(func(s *schedule) {
			*s = midnight
			s.dom, s.domStar = bitsOf(1, 11, 21, 31), false
		})},
		{"0 0 0 * JAN,jul,Dec *", with(func(s *schedule) { *s = midnight; s.month = bitsOf(1, 7, 12) })},
		{"0 0 0 * feb-Jun/2 *", with(func(s *schedule) { *s = midnight; s.month = bitsOf(2, 4, 6) })},
		{"0 0 0 * * MON-FRI", with(func(s *schedule) { *s = midnight; s.dow, s.dowStar = span(1, 5), false })},
		{"0 0 0 * * sun,Sat", with(func(s *schedule) { *s = midnight; s.dow, s.dowStar = bitsOf(0, 6), false })},
		{"0 0 0 * * 7", with(func(s *schedule) { *s = midnight; s.dow, s.dowStar = bitsOf(0), false })},
		{"0 0 0 * * 5-7", with(func(s *schedule) { *s = midnight; s.dow, s.dowStar = bitsOf(0, 5, 6), false })},
		{"0 0 0 * * */2", with(func(s *schedule) { *s = midnight; s.dow, s.dowStar = bitsOf(0, 2, 4, 6), false })},
		{"0 0 0 * * 1/2", with(func(s *schedule) { *s = midnight; s.dow, s.dowStar = bitsOf(1, 3, 5), false })},
		{"0 0 0 13 * FRI", with(func(s *schedule) {
			*s = midnight
			s.dom, s.domStar, s.dow, s.dowStar = bitsOf(13), false, bitsOf(5), false
		})},
		{"@yearly", with(func(s *schedule) { *s = midnight; s.dom, s.domStar, s.month = 1<<1, false, 1<<1 })},
		{"@annually", with(func(s *schedule) { *s = midnight; s.dom, s.domStar, s.month = 1<<1, false, 1<<1 })},
		{"@monthly", with(func(s *schedule) { *s = midnight; s.dom, s.domStar = 1<<1, false })},
		{"@weekly", with(func(s *schedule) { *s = midnight; s.dow, s.dowStar = 1, false })},
		{"@daily", midnight},
		{"@midnight", midnight},
		{"@DAILY", midnight},
		{"@hourly", with(func(s *schedule) { s.second, s.minute = 1, 1 })},
		{"@every 1h30m", schedule{loc: time.UTC, every: 90 * time.Minute}},
		{"  @every   45s ", schedule{loc: time.UTC, every: 45 * time.Second}},
		{"@every 1500ms", schedule{loc: time.UTC, every: time.Second}},
		{"@every 1ns", schedule{loc: time.UTC, every: time.Second}},
	}
	for _, tt := range tests {
		got, err := parseSchedule(tt.spec, time.UTC)
		if err != nil {
			t.Errorf("parseSchedule(%q): %v", tt.spec, err)
			continue
		}
		if *got != tt.want {
			t.Errorf("parseSchedule(%q) = %+v, want %+v", tt.spec, *got, tt.want)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"0 0 25 * * *", `--schedule "0 0 25 * * *": hours field "25": want 0-23`},
		{"", `--schedule "": empty: want 6 fields`},
		{"   ", `empty: want 6 fields`},
		{"0 4 * * *", `5 fields, but the schedule needs a seconds field first (second minute hour day-of-month month day-of-week): for example "0 0 4 * * *"`},
		{"* * * *", `4 fields, want 6: second minute hour`},
		{"0 0 0 * * * 2026", `7 fields, want 6`},
		{"60 * * * * *", `seconds field "60": want 0-59`},
		{"-1 * * * * *", `seconds field "-1": want 0-59`},
		{"1-2-3 * * * * *", `seconds field "1-2-3": want 0-59`},
		{"x * * * * *", `seconds field "x": want 0-59`},
		{"0 60 * * * *", `minutes field "60": want 0-59`},
		{"0 0 1,24 * * *", `hours field "24": want 0-23`},
		{"0 0 20-24 * * *", `hours field "20-24": want 0-23`},
		{"0 0 0 0 * *", `day-of-month field "0": want 1-31`},
		{"0 0 0 32 * *", `day-of-month field "32": want 1-31`},
		{"0 0 0 1,,2 * *", `day-of-month field "": want 1-31`},
		{"0 0 0 * 0 *", `month field "0": want 1-12 or JAN-DEC`},
		{"0 0 0 * 13 *", `month field "13": want 1-12 or JAN-DEC`},
		{"0 0 0 * * 8", `day-of-week field "8": want 0-7 or SUN-SAT`},
		{"*/0 * * * * *", `seconds field "*/0": want a step of at least 1`},
		{"0 0-30/0 * * * *", `minutes field "0-30/0": want a step of at least 1`},
		{"0 0 0 * * 1/-2", `day-of-week field "1/-2": want a step of at least 1`},
		{"0 0 */x * * *", `hours field "*/x": want a step of at least 1`},
		{"0 0 17-9 * * *", `hours field "17-9": range 17-9 runs backwards: want start <= end`},
		{"0 0 0 * DEC-JAN *", `month field "DEC-JAN": range 12-1 runs backwards`},
		{"0 0 0 * * SAT-MON", `day-of-week field "SAT-MON": range 6-1 runs backwards`},
		{"0 0 0 * FOO *", `month field "FOO": want 1-12 or JAN-DEC`},
		{"0 0 0 * January *", `month field "January": want 1-12 or JAN-DEC`},
		{"0 0 0 * MON *", `month field "MON": want 1-12 or JAN-DEC`},
		{"0 0 0 * * FUNDAY", `day-of-week field "FUNDAY": want 0-7 or SUN-SAT`},
		{"0 0 0 * * JAN", `day-of-week field "JAN": want 0-7 or SUN-SAT`},
		{"0 0 0 MON * *", `day-of-month field "MON": want 1-31`},
		{"@every", `--schedule "@every": @every needs one duration, for example "@every 1h30m"`},
		{"@every 1h 2h", `@every needs one duration`},
		{"@every -5m", `--schedule "@every -5m": @every -5m: want a positive duration`},
		{"@every 0s", `@every 0s: want a positive duration`},
		{"@every soon", `@every: time: invalid duration "soon"`},
		{"@fortnightly", `unknown descriptor "@fortnightly": want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>`},
		{"@daily 5", `@daily takes no argument`},
	}
	for _, tt := range tests {
		s, err := parseSchedule(tt.spec, time.UTC)
		if err == nil {
			t.Errorf("parseSchedule(%q) = %+v, want an error", tt.spec, *s)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseSchedule(%q) error:\n %s\nwant it to contain\n %s", tt.spec, err, tt.want)
		}
		if !strings.HasPrefix(err.Error(), "--schedule ") {
			t.Errorf("parseSchedule(%q) error %q does not name the flag", tt.spec, err)
		}
	}
}

// loadZone loads a time zone or skips the test when the machine has no data for it.
func loadZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available: %v", name, err)
	}
	return loc
}

func TestScheduleNext(t *testing.T) {
	tests := []struct {
		name, spec, zone, from string
		// want is the chain of activations from `from`; "" stands for the zero time.
		want []string
	}{
		{"every 5 minutes across an hour", "0 */5 * * * *", "UTC", "2026-03-10T10:52:17Z",
			[]string{"2026-03-10T10:55:00Z", "2026-03-10T11:00:00Z", "2026-03-10T11:05:00Z"}},
		{"strictly after an activation", "0 0 4 * * *", "UTC", "2026-03-10T04:00:00Z",
			[]string{"2026-03-11T04:00:00Z"}},
		{"just before an activation", "0 0 4 * * *", "UTC", "2026-03-10T03:59:59.999Z",
			[]string{"2026-03-10T04:00:00Z"}},
		{"every second keeps going", "* * * * * *", "UTC", "2026-12-31T23:59:58.5Z",
			[]string{"2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z", "2027-01-01T00:00:01Z"}},
		{"time given in another zone", "0 0 9 * * *", "Europe/Berlin", "2026-01-10T07:59:00Z",
			[]string{"2026-01-10T09:00:00+01:00", "2026-01-11T09:00:00+01:00"}},
		{"31st only in long months", "0 0 0 31 * *", "UTC", "2026-01-31T00:00:00Z",
			[]string{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
				"2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z"}},
		{"30th skips February", "0 0 0 30 * *", "UTC", "2026-01-30T00:00:00Z",
			[]string{"2026-03-30T00:00:00Z", "2026-04-30T00:00:00Z"}},
		{"28 February every year", "0 0 0 28 2 *", "UTC", "2027-03-01T00:00:00Z",
			[]string{"2028-02-28T00:00:00Z", "2029-02-28T00:00:00Z"}},
		{"leap day over years", "0 0 12 29 2 *", "UTC", "2023-01-01T00:00:00Z",
			[]string{"2024-02-29T12:00:00Z", "2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"}},
		{"leap day: 2100 is not a leap year, 2104 is beyond 5 years", "0 0 12 29 2 *", "UTC", "2096-03-01T00:00:00Z",
			[]string{""}},
		{"30 February never", "0 0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z", []string{""}},
		{"31 April never", "0 0 0 31 APR *", "UTC", "2026-01-01T00:00:00Z", []string{""}},
		{"dom or dow when both restricted", "0 0 0 13 * FRI", "UTC", "2026-01-01T00:00:00Z",
			[]string{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z"}},
		{"a step restricts: dom or dow", "0 0 0 */10 * 1", "UTC", "2026-01-01T00:00:00Z",
			[]string{"2026-01-05T00:00:00Z", "2026-01-11T00:00:00Z", "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z", "2026-01-21T00:00:00Z"}},
		{"dow alone when dom is *", "0 0 0 * * FRI", "UTC", "2026-01-01T00:00:00Z",
			[]string{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z"}},
		{"dow alone when dom is ?", "0 0 0 ? * 7", "UTC", "2026-01-01T00:00:00Z",
			[]string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
		{"dom alone when dow is ?", "0 0 0 13 * ?", "UTC", "2026-01-01T00:00:00Z",
			[]string{"2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z"}},
		{"weekdays over a weekend", "0 0 9 * * MON-FRI", "UTC", "2026-01-09T10:00:00Z",
			[]string{"2026-01-12T09:00:00Z", "2026-01-13T09:00:00Z"}},
		{"@hourly", "@hourly", "UTC", "2026-01-01T10:59:59.999Z",
			[]string{"2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"}},
		{"@weekly runs on Sunday", "@weekly", "UTC", "2026-01-01T00:00:00Z",
			[]string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
		{"@monthly", "@monthly", "UTC", "2026-01-15T00:00:00Z",
			[]string{"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"}},
		{"@yearly across years", "@yearly", "Europe/Berlin", "2026-06-01T00:00:00+02:00",
			[]string{"2027-01-01T00:00:00+01:00", "2028-01-01T00:00:00+01:00", "2029-01-01T00:00:00+01:00"}},
		{"new year a second away", "0 0 0 1 1 *", "Europe/Berlin", "2026-12-31T23:59:59+01:00",
			[]string{"2027-01-01T00:00:00+01:00"}},
		{"@every drops the fraction of a second", "@every 90m", "UTC", "2026-01-01T10:00:00.75Z",
			[]string{"2026-01-01T11:30:00Z", "2026-01-01T13:00:00Z"}},
		{"@every below a second is a second", "@every 500ms", "UTC", "2026-01-01T10:00:00.2Z",
			[]string{"2026-01-01T10:00:01Z", "2026-01-01T10:00:02Z"}},
		{"@every counts real time over spring-forward", "@every 1h", "America/New_York", "2026-03-08T01:30:00-05:00",
			[]string{"2026-03-08T03:30:00-04:00", "2026-03-08T04:30:00-04:00"}},

		// New York: 2026-03-08 02:00 EST becomes 03:00 EDT; 2026-11-01 02:00 EDT becomes 01:00 EST.
		{"NY spring-forward: 02:30 does not exist that day", "0 30 2 * * *", "America/New_York", "2026-03-07T03:00:00-05:00",
			[]string{"2026-03-09T02:30:00-04:00"}},
		{"NY spring-forward: hourly skips 02:00", "0 0 * * * *", "America/New_York", "2026-03-08T00:30:00-05:00",
			[]string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"}},
		{"NY spring-forward: every second", "* * * * * *", "America/New_York", "2026-03-08T01:59:59-05:00",
			[]string{"2026-03-08T03:00:00-04:00"}},
		{"NY fall-back: 01:30 runs once", "0 30 1 * * *", "America/New_York", "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"NY fall-back: hourly does not repeat 01:00", "0 0 * * * *", "America/New_York", "2026-11-01T00:30:00-04:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"}},
		{"NY fall-back: from the first pass", "0 */15 * * * *", "America/New_York", "2026-11-01T01:40:00-04:00",
			[]string{"2026-11-01T01:45:00-04:00", "2026-11-01T02:00:00-05:00"}},
		{"NY fall-back: inside the repeated hour", "0 */15 * * * *", "America/New_York", "2026-11-01T01:10:00-05:00",
			[]string{"2026-11-01T02:00:00-05:00", "2026-11-01T02:15:00-05:00"}},
		{"NY fall-back: every second", "* * * * * *", "America/New_York", "2026-11-01T01:59:59-04:00",
			[]string{"2026-11-01T02:00:00-05:00"}},

		// Berlin: 2026-03-29 02:00 CET becomes 03:00 CEST; 2026-10-25 03:00 CEST becomes 02:00 CET.
		{"Berlin spring-forward: 02:30 does not exist that day", "0 30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-30T02:30:00+02:00"}},
		{"Berlin spring-forward: hourly skips 02:00", "0 0 * * * *", "Europe/Berlin", "2026-03-29T00:30:00+01:00",
			[]string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"}},
		{"Berlin fall-back: 02:30 runs once", "0 30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"Berlin fall-back: hourly does not repeat 02:00", "0 0 * * * *", "Europe/Berlin", "2026-10-25T01:30:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00"}},
		{"Berlin fall-back: inside the repeated hour", "0 0,30 * * * *", "Europe/Berlin", "2026-10-25T02:10:00+01:00",
			[]string{"2026-10-25T03:00:00+01:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := loadZone(t, tt.zone)
			s, err := parseSchedule(tt.spec, loc)
			if err != nil {
				t.Fatal(err)
			}
			at, err := time.Parse(time.RFC3339Nano, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.want {
				got := s.next(at)
				if got.IsZero() {
					if want != "" {
						t.Fatalf("next #%d after %s = zero time, want %s", i+1, at.Format(time.RFC3339Nano), want)
					}
					return
				}
				if g := got.Format(time.RFC3339Nano); g != want {
					t.Fatalf("next #%d after %s = %s, want %s", i+1, at.Format(time.RFC3339Nano), g, want)
				}
				if got.Location() != loc {
					t.Fatalf("next #%d is in %s, want the schedule's %s", i+1, got.Location(), loc)
				}
				at = got
			}
		})
	}
}

// TestScheduleNextAgainstClock checks next on the transition days against activations found by
// walking every minute of real time and keeping the first instant each wall-clock minute is shown.
func TestScheduleNextAgainstClock(t *testing.T) {
	days := []struct{ zone, day string }{
		{"America/New_York", "2026-03-08"},
		{"America/New_York", "2026-11-01"},
		{"Europe/Berlin", "2026-03-29"},
		{"Europe/Berlin", "2026-10-25"},
	}
	specs := []struct {
		spec    string
		matches func(wall time.Time) bool
	}{
		{"0 */20 * * * *", func(w time.Time) bool { return w.Minute()%20 == 0 }},
		{"0 0,30 1-3 * * *", func(w time.Time) bool { return w.Minute()%30 == 0 && w.Hour() >= 1 && w.Hour() <= 3 }},
		{"0 59 * * * *", func(w time.Time) bool { return w.Minute() == 59 }},
	}
	for _, d := range days {
		loc := loadZone(t, d.zone)
		day, err := time.ParseInLocation(time.DateOnly, d.day, loc)
		if err != nil {
			t.Fatal(err)
		}
		start, end := day.Add(-6*time.Hour), day.Add(54*time.Hour)
		for _, sp := range specs {
			s, err := parseSchedule(sp.spec, loc)
			if err != nil {
				t.Fatal(err)
			}
			var runs []time.Time
			seen := map[string]bool{}
			for at := start; at.Before(end); at = at.Add(time.Minute) {
				wall := at.Format(time.DateTime)
				if sp.matches(at) && !seen[wall] {
					runs = append(runs, at)
				}
				seen[wall] = true
			}
			for at := start.Add(time.Hour); at.Before(day.Add(30 * time.Hour)); at = at.Add(7 * time.Minute) {
				var want time.Time
				for _, r := range runs {
					if r.After(at) {
						want = r
						break
					}
				}
				if want.IsZero() {
					t.Fatalf("%s %q: the walk found no run after %s", d.zone, sp.spec, at.Format(time.RFC3339))
				}
				if got := s.next(at); !got.Equal(want) {
					t.Errorf("%s %q: next after %s = %s, want %s", d.zone, sp.spec,
						at.Format(time.RFC3339), got.Format(time.RFC3339), want.Format(time.RFC3339))
				}
			}
		}
	}
}

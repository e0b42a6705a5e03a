package reports

import (
	"sort"
	"time"
)

// span is a half-open interval [from, to). Lists of spans handled here are
// sorted and disjoint (see merge).
type span struct{ from, to time.Time }

func (s span) dur() time.Duration { return s.to.Sub(s.from) }

// merge sorts spans and joins those that overlap or touch; empty ones go.
func merge(in []span) []span {
	ss := make([]span, 0, len(in))
	for _, s := range in {
		if s.from.Before(s.to) {
			ss = append(ss, s)
		}
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].from.Before(ss[j].from) })
	out := ss[:0]
	for _, s := range ss {
		if n := len(out); n > 0 && !s.from.After(out[n-1].to) {
			if s.to.After(out[n-1].to) {
				out[n-1].to = s.to
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// intersect returns the time in both a and b (each sorted and disjoint).
func intersect(a, b []span) []span {
	var out []span
	for i, j := 0, 0; i < len(a) && j < len(b); {
		from, to := later(a[i].from, b[j].from), earlier(a[i].to, b[j].to)
		if from.Before(to) {
			out = append(out, span{from, to})
		}
		if a[i].to.Before(b[j].to) {
			i++
		} else {
			j++
		}
	}
	return out
}

// subtract returns the time in a and not in b (each sorted and disjoint).
func subtract(a, b []span) []span {
	var out []span
	j := 0
	for _, s := range a {
		cur := s.from
		for j < len(b) && !b[j].to.After(cur) {
			j++
		}
		for k := j; k < len(b) && b[k].from.Before(s.to); k++ {
			if b[k].from.After(cur) {
				out = append(out, span{cur, b[k].from})
			}
			if b[k].to.After(cur) {
				cur = b[k].to
			}
		}
		if cur.Before(s.to) {
			out = append(out, span{cur, s.to})
		}
	}
	return out
}

func total(ss []span) time.Duration {
	var d time.Duration
	for _, s := range ss {
		d += s.dur()
	}
	return d
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

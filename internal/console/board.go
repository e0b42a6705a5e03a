package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance"
)

// The board shows a fleet of ten thousand devices: per customer and site
// the counts per state, problems first, and one page of devices at a time.
const (
	boardDevicesPerPage = 100
	boardSitesPerPage   = 50
	maxBoardSearch      = 100
	maxBoardPage        = 10000
)

// boardClasses are what the board counts and filters by, problems first:
// the probes' states, with "flapping" (a device changing state too often,
// whatever its state now) among the problems.
var boardClasses = []string{"down", "unreachable", "degraded", "misconfigured", "flapping", "maintenance", "unknown", "up"}

// problemClasses are the classes a site is ranked by, worst first.
var problemClasses = boardClasses[:5]

// boardQuery is the board's URL query, checked.
type boardQuery struct {
	Customer, Site, Kind, State, Search string
	Page, SitePage                      int
}

// errBadQuery is a board URL the console does not understand.
var errBadQuery = errors.New("console: bad board query")

// parseBoardQuery accepts only the board's parameters, each at most once,
// and refuses anything else rather than guess.
func parseBoardQuery(q url.Values) (boardQuery, error) {
	out := boardQuery{Page: 1, SitePage: 1}
	for key, vals := range q {
		if len(vals) != 1 {
			return out, fmt.Errorf("%w: %s given %d times", errBadQuery, key, len(vals))
		}
		v := vals[0]
		if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
			return out, fmt.Errorf("%w: %s is not text", errBadQuery, key)
		}
		switch key {
		case "customer", "site":
			if len(v) > 64 {
				return out, fmt.Errorf("%w: %s longer than 64 bytes", errBadQuery, key)
			}
			if key == "customer" {
				out.Customer = v
			} else {
				out.Site = v
			}
		case "kind":
			if v != "" && !slices.Contains(assets.DeviceKinds, v) {
				return out, fmt.Errorf("%w: unknown kind %q", errBadQuery, v)
			}
			out.Kind = v
		case "state":
			if v != "" && v != "problems" && !slices.Contains(boardClasses, v) {
				return out, fmt.Errorf("%w: unknown state %q", errBadQuery, v)
			}
			out.State = v
		case "q":
			if utf8.RuneCountInString(v) > maxBoardSearch {
				return out, fmt.Errorf("%w: search longer than %d characters", errBadQuery, maxBoardSearch)
			}
			out.Search = strings.TrimSpace(v)
		case "page", "spage":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxBoardPage {
				return out, fmt.Errorf("%w: %s must be a number from 1 to %d", errBadQuery, key, maxBoardPage)
			}
			if key == "page" {
				out.Page = n
			} else {
				out.SitePage = n
			}
		default:
			return out, fmt.Errorf("%w: unknown parameter %q", errBadQuery, key)
		}
	}
	return out, nil
}

// classOf is the board class of a device: its state, or flapping when it
// flaps in a state that is not itself a problem.
func classOf(r *deviceRow) string {
	if r.Flapping && !slices.Contains(problemClasses[:4], r.State) {
		return "flapping"
	}
	return r.State
}

// rankOf orders devices worst first; a device failing its probes but not
// yet confirmed down comes right after the down ones.
func rankOf(r *deviceRow) int {
	if r.Failing {
		return 1
	}
	switch i := slices.Index(boardClasses, classOf(r)); {
	case i == 0:
		return 0
	case i > 0:
		return i + 1
	}
	return len(boardClasses) + 1
}

// classCounts are device counts per board class.
type classCounts map[string]int

func (c classCounts) add(r *deviceRow) {
	c[r.State]++
	if r.Flapping {
		c["flapping"]++
	}
	c["total"]++
}

// worse reports whether c has more serious problems than other: more
// down devices, then more unreachable, and so on; differ is false when
// they tie.
func (c classCounts) worse(other classCounts) (worse, differ bool) {
	for _, s := range problemClasses {
		if c[s] != other[s] {
			return c[s] > other[s], true
		}
	}
	return false, false
}

// siteGroup is a site's line on the board.
type siteGroup struct {
	SiteID, SiteName string
	Counts           classCounts
}

// customerGroup is a customer's block of site lines.
type customerGroup struct {
	CustomerID, CustomerName string
	Counts                   classCounts
	Sites                    []*siteGroup
}

// pager is one page of a longer list.
type pager struct {
	Page, Pages, Total, From, To int
	// Param is the query parameter that selects the page.
	Param string
}

func paginate(total, page, per int, param string) pager {
	pages := max(1, (total+per-1)/per)
	page = min(page, pages)
	from := min((page-1)*per, total)
	return pager{Page: page, Pages: pages, Total: total, From: from, To: min(from+per, total), Param: param}
}

// matches reports whether a device matches the search: its id, name,
// serial number or AE title contains the text, ignoring case.
func matches(d *deviceRow, needle string) bool {
	if needle == "" {
		return true
	}
	for _, hay := range []string{d.ID, d.Name, d.Serial, calledAE(d.Device)} {
		if hay != "" && strings.Contains(strings.ToLower(hay), needle) {
			return true
		}
	}
	return false
}

func calledAE(d assets.Device) string {
	if d.DICOM == nil {
		return ""
	}
	return d.DICOM.CalledAE
}

// boardView is what the board template receives.
type boardView struct {
	boardQuery
	Customers []assets.Customer
	Sites     []assets.Site
	Kinds     []string
	States    []string
	// Counts are over every device the customer, site and kind filters
	// keep; Groups the sites with a device the search and state filters
	// keep, each with the counts of all its devices.
	Counts      classCounts
	Groups      []*customerGroup
	SitePager   pager
	Devices     []deviceRow
	DevicePager pager
	Outages     []outageRow
	Queue       []queuedTicket
	Holds       map[int64]*holdView
	Collectors  []collectorRow
}

// Link is the board URL with the current filters and the given changes.
func (b boardView) Link(kv ...any) string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("customer", b.Customer)
	set("site", b.Site)
	set("kind", b.Kind)
	set("state", b.State)
	set("q", b.Search)
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := fmt.Sprint(kv[i]), fmt.Sprint(kv[i+1])
		q.Del(k)
		if v != "" && !((k == "page" || k == "spage") && v == "1") {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return "/console/noc"
	}
	return "/console/noc?" + q.Encode()
}

func (c *Console) board(rq *request) error {
	bq, err := parseBoardQuery(rq.r.URL.Query())
	if err != nil {
		c.fail(rq, http.StatusBadRequest, "board.badquery")
		return nil
	}
	scope := assets.DeviceFilter{Scope: assets.Scope{CustomerID: bq.Customer}, SiteID: bq.Site, Kind: bq.Kind}
	// Summaries, not whole devices: at ten thousand devices the read is
	// most of the page's time.
	summaries, err := c.cfg.Assets.DeviceSummaries(rq.ctx(), scope)
	if err != nil {
		return err
	}
	all, err := c.withStates(rq.ctx(), scope.Scope, summaries)
	if err != nil {
		return err
	}
	customers, err := c.cfg.Assets.Customers(rq.ctx(), assets.Scope{})
	if err != nil {
		return err
	}
	sites, err := c.cfg.Assets.Sites(rq.ctx(), assets.Scope{CustomerID: bq.Customer}, false)
	if err != nil {
		return err
	}
	v := boardView{boardQuery: bq, Customers: customers, Sites: sites, Kinds: assets.DeviceKinds,
		States: append([]string{"problems"}, boardClasses...), Counts: classCounts{}}

	needle := strings.ToLower(bq.Search)
	keep := func(r *deviceRow) bool {
		switch bq.State {
		case "":
		case "problems":
			if rankOf(r) > len(problemClasses) {
				return false
			}
		case "flapping":
			if !r.Flapping {
				return false
			}
		default:
			if r.State != bq.State {
				return false
			}
		}
		return matches(r, needle)
	}
	siteCounts := map[string]classCounts{}
	listed := map[string]bool{}
	// Indices into all: a device row is large, and ten thousand of them
	// copied and sorted cost more than the rest of the page.
	shown := make([]int, 0, len(all))
	for i := range all {
		r := &all[i]
		v.Counts.add(r)
		if siteCounts[r.SiteID] == nil {
			siteCounts[r.SiteID] = classCounts{}
		}
		siteCounts[r.SiteID].add(r)
		if keep(r) {
			shown = append(shown, i)
			listed[r.SiteID] = true
		}
	}

	// Sites with problems first, worst first; then the quiet ones by
	// customer and name. Consecutive lines of one customer share its
	// heading (with the counts of all its devices).
	customerName := map[string]string{}
	for _, cu := range customers {
		customerName[cu.ID] = cu.Name
	}
	customerCounts := map[string]classCounts{}
	for i := range all {
		r := &all[i]
		if customerCounts[r.CustomerID] == nil {
			customerCounts[r.CustomerID] = classCounts{}
		}
		customerCounts[r.CustomerID].add(r)
	}
	type line struct {
		*siteGroup
		customer string
	}
	var lines []line
	for _, s := range sites {
		if listed[s.ID] {
			lines = append(lines, line{&siteGroup{SiteID: s.ID, SiteName: s.Name, Counts: siteCounts[s.ID]}, s.CustomerID})
		}
	}
	sort.SliceStable(lines, func(i, j int) bool {
		a, b := lines[i], lines[j]
		if w, differ := a.Counts.worse(b.Counts); differ {
			return w
		}
		if a.customer != b.customer {
			return customerName[a.customer] < customerName[b.customer]
		}
		return a.SiteName < b.SiteName
	})
	v.SitePager = paginate(len(lines), bq.SitePage, boardSitesPerPage, "spage")
	for _, l := range lines[v.SitePager.From:v.SitePager.To] {
		if n := len(v.Groups); n == 0 || v.Groups[n-1].CustomerID != l.customer {
			v.Groups = append(v.Groups, &customerGroup{CustomerID: l.customer, CustomerName: customerName[l.customer], Counts: customerCounts[l.customer]})
		}
		g := v.Groups[len(v.Groups)-1]
		g.Sites = append(g.Sites, l.siteGroup)
	}

	// Devices: worst first, then by customer, site and name.
	rank := make([]int, len(all))
	for _, i := range shown {
		rank[i] = rankOf(&all[i])
	}
	slices.SortStableFunc(shown, func(i, j int) int {
		a, b := &all[i], &all[j]
		return cmp.Or(cmp.Compare(rank[i], rank[j]), cmp.Compare(a.CustomerID, b.CustomerID),
			cmp.Compare(a.SiteName, b.SiteName), cmp.Compare(a.Name, b.Name))
	})
	v.DevicePager = paginate(len(shown), bq.Page, boardDevicesPerPage, "page")
	for _, i := range shown[v.DevicePager.From:v.DevicePager.To] {
		v.Devices = append(v.Devices, all[i])
	}

	if v.Outages, err = c.openOutages(rq.ctx(), bq.Customer, bq.Site); err != nil {
		return err
	}
	if v.Queue, err = c.openTickets(rq, maintenance.Scope{}, bq.Customer, bq.Site); err != nil {
		return err
	}
	if v.Holds, err = c.holdLines(rq, v.Queue); err != nil {
		return err
	}
	if v.Collectors, err = c.collectors(rq.ctx(), bq.Customer); err != nil {
		return err
	}
	c.render(rq, http.StatusOK, "board", translate(rq.lang, "board.title"), v)
	return nil
}

package reports

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance/calendar"
)

// Outbox is where the monthly e-mail goes (notify's outbox).
type Outbox interface {
	EnqueueCustomerEmail(ctx context.Context, key, customerID string, build func() (subject, body string, err error), at time.Time) (int, error)
}

// Customers lists the customers to report to.
type Customers interface {
	Customers(ctx context.Context, sc assets.Scope) ([]assets.Customer, error)
}

// MonthlyMailer sends each customer last month's report on the first
// working day of the month, through the outbox, once: the outbox's unique
// event key (report:monthly:CUSTOMER:YYYY-MM) makes every later sweep, a
// restart or a second instance a no-op.
type MonthlyMailer struct {
	Reporter  *Reporter
	Customers Customers
	Outbox    Outbox
	// Portal is the base URL the e-mail points at for the PDF ("" leaves
	// the link out).
	Portal string
	Log    *slog.Logger
}

// MailKey is the outbox event key of customerID's report for month.
func MailKey(customerID, month string) string { return "report:monthly:" + customerID + ":" + month }

// firstWorkingInstant is the first working instant of the month holding
// now, in the calendar of the customer's first contract (by id) with
// business hours: a 24/7 contract makes every day a working day, so it
// counts only when the customer has no other. Monday to Friday 08:00–18:00
// in the customer's zone when no policy is known.
func (m *MonthlyMailer) firstWorkingInstant(ctx context.Context, c assets.Customer, now time.Time) (time.Time, error) {
	loc := c.Location()
	local := now.In(loc)
	first := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc)
	contracts, err := m.Reporter.Inventory.Contracts(ctx, assets.Scope{CustomerID: c.ID}, false)
	if err != nil {
		return time.Time{}, fmt.Errorf("reports: contracts of %s: %w", c.ID, err)
	}
	sort.Slice(contracts, func(i, j int) bool { return contracts[i].ID < contracts[j].ID })
	var always *calendar.Calendar
	for _, k := range contracts {
		p, err := m.Reporter.policy(k.SLAPolicy)
		switch {
		case err != nil:
		case !p.Calendar().IsAlways():
			return p.Calendar().Next(first), nil
		case always == nil:
			always = p.Calendar()
		}
	}
	if always != nil {
		return always.Next(first), nil
	}
	cal, err := calendar.New(calendar.Config{Zone: loc.String(), Hours: map[string][]string{"mon-fri": {"08:00-18:00"}}})
	if err != nil {
		return time.Time{}, err
	}
	return cal.Next(first), nil
}

// RunDue enqueues last month's report of every customer whose first
// working instant of this month has come and who was in the inventory
// before the month ended; it returns how many e-mails it added.
func (m *MonthlyMailer) RunDue(ctx context.Context, now time.Time) (int, error) {
	customers, err := m.Customers.Customers(ctx, assets.Scope{})
	if err != nil {
		return 0, fmt.Errorf("reports: customers: %w", err)
	}
	total := 0
	var errs []error
	for _, c := range customers {
		if c.RetiredAt != nil {
			continue
		}
		start, err := m.firstWorkingInstant(ctx, c, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if now.Before(start) {
			continue
		}
		month := start.In(c.Location()).AddDate(0, -1, 0).Format("2006-01")
		if monthEnd, _ := time.ParseInLocation("2006-01", start.In(c.Location()).Format("2006-01"), c.Location()); !c.CreatedAt.Before(monthEnd) {
			continue // in the inventory only since: nothing to report for that month
		}
		n, err := m.Outbox.EnqueueCustomerEmail(ctx, MailKey(c.ID, month), c.ID, func() (string, string, error) {
			return m.message(ctx, c.ID, month)
		}, now)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("reports: monthly e-mail of %s for %s: %w", c.ID, month, err))
		}
	}
	return total, errors.Join(errs...)
}

// message is the e-mail of the report: its summary as text, in the
// customer's language, and where to download the PDF.
func (m *MonthlyMailer) message(ctx context.Context, customerID, month string) (string, string, error) {
	rep, err := m.Reporter.Monthly(ctx, customerID, month)
	if err != nil {
		return "", "", err
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		return "", "", err
	}
	l := labels[rep.lang()]
	if m.Portal != "" {
		fmt.Fprintf(&b, "\n%s (PDF): %s/api/v1/reports/monthly?month=%s&format=pdf\n", l["title"], m.Portal, month)
	}
	return fmt.Sprintf("%s — %s — %s", l["title"], rep.CustomerName, month), b.String(), nil
}

// RunMonthlyMail runs the mailer every interval (hourly by default) as a
// leader-only gocron job until ctx ends.
func RunMonthlyMail(ctx context.Context, m *MonthlyMailer, elector gocron.Elector, now func() time.Time, every time.Duration) error {
	if every <= 0 {
		every = time.Hour
	}
	opts := []gocron.SchedulerOption{gocron.WithStopTimeout(15 * time.Second)}
	if elector != nil {
		opts = append(opts, gocron.WithDistributedElector(elector))
	}
	s, err := gocron.NewScheduler(opts...)
	if err != nil {
		return fmt.Errorf("reports: jobs: %w", err)
	}
	_, err = s.NewJob(gocron.DurationJob(every), gocron.NewTask(func(ctx context.Context) {
		n, err := m.RunDue(ctx, now())
		switch {
		case err != nil && ctx.Err() == nil:
			m.Log.Warn("job failed", "job", "monthly report e-mail", "err", err)
		case n > 0:
			m.Log.Info("job done", "job", "monthly report e-mail", "count", n)
		}
	}), gocron.WithName("monthly report e-mail"), gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()))
	if err != nil {
		s.Shutdown()
		return fmt.Errorf("reports: job monthly report e-mail: %w", err)
	}
	s.Start()
	<-ctx.Done()
	if err := s.Shutdown(); err != nil {
		return fmt.Errorf("reports: jobs: shutdown: %w", err)
	}
	return nil
}

package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/telemetry"
	"raterd/sinks/alert/notify"
)

// Deps are what Build takes from the rest of the application.
type Deps struct {
	// Channels are what the channels are built with: the HTTP client, the ClickHouse
	// connection (not owned), the Kafka transport.
	Channels notify.Deps
	// Redis are the options of the Redis client for alert state, used when State is
	// redis: Build opens the client and closes it with the rest.
	Redis *redis.UniversalOptions
	// Database is the ClickHouse database the drill-down SQL reads; default "raterd".
	Database string
	// Telemetry is what the Manager and the channels' Deliverers log and count with
	// (their logger gets the attribute component=alerting). Unset fields mean
	// telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
}

// deliveryDrain bounds how long closing waits for the channels' queued notifications.
const deliveryDrain = 10 * time.Second

// Build builds, from an AlertingConfig that Validate accepted, the channels (each behind
// a Deliverer), the alert state store and the Manager. The closers are to be closed last
// to first: the Manager first (its final evaluation enqueues), then the channels are
// drained (within 10s), then the Redis client. On error everything built is closed.
func Build(ctx context.Context, a *AlertingConfig, deps Deps) (*Manager, []io.Closer, error) {
	tel := deps.Telemetry.WithDefaults()
	tel.Logger = tel.Logger.With("component", "alerting")
	logger := tel.Logger
	var closers []io.Closer
	fail := func(err error) (*Manager, []io.Closer, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close()
		}
		return nil, nil, err
	}
	var store Store
	if a.State == StateRedis {
		if deps.Redis == nil {
			return nil, nil, errors.New("alerting.state: redis, but no Redis client options")
		}
		client := redis.NewUniversalClient(deps.Redis)
		closers = append(closers, client)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := client.Ping(pctx).Err(); err != nil {
			// Not fatal: scoring goes on; alerting keeps its observations (bounded) until Redis answers.
			logger.Warn("redis not answering at start; alert state waits for it", "addrs", deps.Redis.Addrs, "err", err)
		}
		cancel()
		store = NewRedisStore(client, a.KeyPrefix)
	}
	channels := map[string]Channel{}
	var deliverers []*notify.Deliverer
	for _, name := range slices.Sorted(maps.Keys(a.Channels)) {
		c := a.Channels[name]
		n, err := notify.New(c.Type, name, c.decoded, deps.Channels)
		if err == nil {
			var d *notify.Deliverer
			if d, err = notify.NewDeliverer(n, c.Delivery, notify.DeliveryOptions{Telemetry: tel}); err == nil {
				channels[name] = d
				deliverers = append(deliverers, d)
			}
		}
		if err != nil {
			closers = append(closers, drainDeliverers(deliverers))
			return fail(fmt.Errorf("alerting.channels.%s: %w", name, err))
		}
	}
	closers = append(closers, drainDeliverers(deliverers))
	m, err := NewManager(a.Config, Options{Store: store, Channels: channels, Database: deps.Database,
		Telemetry: tel})
	if err != nil {
		return fail(err)
	}
	return m, append(closers, m), nil
}

// drainDeliverers closes the Deliverers together, within deliveryDrain.
func drainDeliverers(ds []*notify.Deliverer) io.Closer {
	return closerFunc(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), deliveryDrain)
		defer cancel()
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Go(func() {
				if err := d.Close(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
}

type closerFunc func() error

// Close implements io.Closer.
func (f closerFunc) Close() error { return f() }

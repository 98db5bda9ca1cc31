package testkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClusterNode is one line of a Redis Cluster's CLUSTER NODES.
type RedisClusterNode struct {
	ID, Addr, Flags, MasterID string
	Slots                     int // slots served; those migrating or importing not counted
}

// Master reports whether the node is a master (failed or not).
func (n RedisClusterNode) Master() bool { return strings.Contains(n.Flags, "master") }

// Failed reports whether the cluster has marked the node failed.
func (n RedisClusterNode) Failed() bool { return strings.Contains(n.Flags, "fail") }

// RedisClusterNodes reads CLUSTER NODES as the node at addr sees it.
func RedisClusterNodes(ctx context.Context, addr string) ([]RedisClusterNode, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	out, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", addr, err)
	}
	var nodes []RedisClusterNode
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		n := RedisClusterNode{ID: f[0], Addr: strings.SplitN(f[1], "@", 2)[0], Flags: f[2], MasterID: f[3]}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated or imported
			}
			lo, hi, ok := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if ok {
				b, _ = strconv.Atoi(hi)
			}
			n.Slots += b - a + 1
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// RedisRole is the first word of ROLE at addr ("master", "slave", "sentinel").
func RedisRole(ctx context.Context, addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return "", fmt.Errorf("ROLE on %s: %w", addr, errors.Join(err, errors.New("no answer")))
	}
	s, _ := v[0].(string)
	return s, nil
}

// SentinelMaster asks the Sentinels, each in turn until one answers, for the address of
// master name (SENTINEL get-master-addr-by-name).
func SentinelMaster(ctx context.Context, sentinels []string, name string) (string, error) {
	last := errors.New("no Sentinel addresses")
	for _, a := range sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: a, MaxRetries: -1, DialTimeout: time.Second})
		hp, err := sc.GetMasterAddrByName(ctx, name).Result()
		sc.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		last = fmt.Errorf("sentinel %s: %v: %w", a, hp, errors.Join(err, errors.New("no address")))
	}
	return "", last
}

package app

import (
	"encoding/xml"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// clickhouseTopology is what must agree between the dev stack's ClickHouse cluster and
// docker-compose.yml's: the clusters, their shards and replicas (as node names), the
// replication flags, and the distributed DDL path.
type clickhouseTopology struct {
	Clusters map[string][]topologyShard
	DDLPath  string
}

type topologyShard struct {
	InternalReplication bool
	Nodes               []string
}

// clusterConfigXML is the part of a ClickHouse config.d file the topology is read from.
type clusterConfigXML struct {
	DDLPath string `xml:"distributed_ddl>path"`
	Remote  struct {
		Clusters []struct {
			XMLName xml.Name
			Shards  []struct {
				InternalReplication bool `xml:"internal_replication"`
				Replicas            []struct {
					Host string `xml:"host"`
					Port string `xml:"port"`
				} `xml:"replica"`
			} `xml:"shard"`
		} `xml:",any"`
	} `xml:"remote_servers"`
}

// readTopology parses a cluster config, naming each replica with node(host, port).
func readTopology(t *testing.T, path string, node func(host, port string) string) clickhouseTopology {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c clusterConfigXML
	if err := xml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	top := clickhouseTopology{Clusters: map[string][]topologyShard{}, DDLPath: c.DDLPath}
	for _, cl := range c.Remote.Clusters {
		for _, sh := range cl.Shards {
			s := topologyShard{InternalReplication: sh.InternalReplication}
			for _, r := range sh.Replicas {
				s.Nodes = append(s.Nodes, node(r.Host, r.Port))
			}
			top.Clusters[cl.XMLName.Local] = append(top.Clusters[cl.XMLName.Local], s)
		}
	}
	if len(top.Clusters) == 0 || top.DDLPath == "" {
		t.Fatalf("%s: no remote_servers clusters or no distributed_ddl path", path)
	}
	return top
}

// TestComposeClusterMatchesDevCluster keeps docker-compose.yml's `cluster` profile in step
// with `scripts/services.sh up cluster`: the same clusters, shards, replicas and DDL path
// (deploy/clickhouse/compose-cluster.xml against cluster.xml.tmpl, whose @TCPn@ port is
// the n-th node of the script's CHCLUSTER_NODES), every node a compose service with that
// hostname and the shard and replica macros the script gives it, and raterd's cluster
// config naming the replicated cluster.
func TestComposeClusterMatchesDevCluster(t *testing.T) {
	script, err := os.ReadFile("../../scripts/services-chcluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CHCLUSTER_NODES=\(([^)]*)\)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/services-chcluster.sh: no CHCLUSTER_NODES=(…) line")
	}
	nodes := strings.Fields(string(m[1]))
	dev := readTopology(t, "../../deploy/clickhouse/cluster.xml.tmpl", func(host, port string) string {
		var i int
		if _, err := fmt.Sscanf(port, "@TCP%d@", &i); err != nil || i < 1 || i > len(nodes) || host != "127.0.0.1" {
			t.Fatalf("cluster.xml.tmpl: replica %s:%s is not 127.0.0.1:@TCPn@ of a node", host, port)
		}
		return nodes[i-1]
	})
	compose := readTopology(t, "../../deploy/clickhouse/compose-cluster.xml", func(host, port string) string {
		if port != "9000" || !strings.HasPrefix(host, "ch-") {
			t.Fatalf("compose-cluster.xml: replica %s:%s is not ch-NODE:9000", host, port)
		}
		return strings.TrimPrefix(host, "ch-")
	})
	if !reflect.DeepEqual(dev, compose) {
		t.Fatalf("the compose cluster differs from the dev stack's:\ncompose %+v\ndev     %+v", compose, dev)
	}

	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Profiles    []string          `yaml:"profiles"`
			Hostname    string            `yaml:"hostname"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
		Configs map[string]struct {
			Content string `yaml:"content"`
		} `yaml:"configs"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	replicated := ""
	for name, shards := range dev.Clusters {
		if shards[0].InternalReplication {
			replicated = name
		}
		for si, sh := range shards {
			for _, n := range sh.Nodes {
				svc, ok := file.Services["ch-"+n]
				if !ok {
					t.Errorf("docker-compose.yml: no service ch-%s", n)
					continue
				}
				if svc.Hostname != "ch-"+n || svc.Environment["CH_REPLICA"] != n || svc.Environment["CH_HOSTNAME"] != "ch-"+n || !slices.Contains(svc.Profiles, "cluster") {
					t.Errorf("ch-%s: hostname %q, environment %v, profiles %v", n, svc.Hostname, svc.Environment, svc.Profiles)
				}
				if shards[0].InternalReplication && svc.Environment["CH_SHARD"] != "0"+string(rune('1'+si)) {
					t.Errorf("ch-%s: CH_SHARD %q, want shard %d of cluster %s", n, svc.Environment["CH_SHARD"], si+1, name)
				}
				if !strings.Contains(strings.Join(svc.Volumes, " "), "deploy/clickhouse/compose-cluster.xml:") {
					t.Errorf("ch-%s does not mount deploy/clickhouse/compose-cluster.xml", n)
				}
			}
		}
	}
	cfg, err := ParseConfig([]byte(file.Configs["raterd-cluster-config"].Content), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if replicated == "" || cfg.ClickHouse.Cluster != replicated {
		t.Errorf("raterd-cluster-config: clickhouse.cluster %q, want the replicated cluster %q", cfg.ClickHouse.Cluster, replicated)
	}
}

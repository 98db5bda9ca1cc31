package detect

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML reads "mean" or "pass_rate".
func (s *Stat) UnmarshalYAML(n *yaml.Node) error {
	switch n.Value {
	case "mean":
		*s = StatMean
	case "pass_rate":
		*s = StatPassRate
	default:
		return fmt.Errorf("line %d: stat %q is not mean or pass_rate", n.Line, n.Value)
	}
	return nil
}

// UnmarshalYAML reads "below" or "above".
func (d *Direction) UnmarshalYAML(n *yaml.Node) error {
	switch n.Value {
	case "below":
		*d = Below
	case "above":
		*d = Above
	default:
		return fmt.Errorf("line %d: direction %q is not below or above", n.Line, n.Value)
	}
	return nil
}

"""ML2 mechanism driver for an agentless test Neutron (yunshu issue 18).

There is no L2 agent in the test environment, so the openvswitch/OVN drivers
cannot bind ports and Nova fails a server on a Neutron port with
PortBindingFailed. This driver binds every port, on any host, to its first
segment with vif_type 'ovs' and marks it ACTIVE; Nova's fake virt driver never
plugs anything, so nothing else is needed. Test use only.
"""
from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class FakeBindMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True,
                                 portbindings.OVS_HYBRID_PLUG: False},
                                status=constants.PORT_STATUS_ACTIVE)
            return

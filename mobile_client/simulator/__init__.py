"""Traffic simulator: a seeded population of customers with habits, their legitimate
transfers and six fraud scenarios with ground truth, as plain data (TransferAttempt)
that can drive the in-process decision code or the real gateway."""

from mobile_client.simulator.attempts import Scenario, TransferAttempt
from mobile_client.simulator.population import CITIES, City, Customer, Payee, build_population
from mobile_client.simulator.traffic import FraudMix, Simulation, legit_traffic, simulate

__all__ = [
    "CITIES", "City", "Customer", "FraudMix", "Payee", "Scenario", "Simulation",
    "TransferAttempt", "build_population", "legit_traffic", "simulate",
]

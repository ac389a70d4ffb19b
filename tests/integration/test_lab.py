"""The lab fleet: namespace hosts reached over real SSH by ansible-playbook."""

from __future__ import annotations

import json
import os
import subprocess

from fixtures.lab import lab_harness
from fixtures.playbooks import Ansible

FACTS_PLAY = """
- name: Probe every lab host
  hosts: lab
  gather_facts: false
  tasks:
    - name: Read the host's own address
      ansible.builtin.command: ip -4 -o addr show eth0
      register: address
      changed_when: false
    - name: Reach the first host's sshd from every host
      ansible.builtin.wait_for:
        host: "{{ hostvars[groups['lab'][0]].ansible_host }}"
        port: 22
        timeout: 5
    - name: Listen on this host's own loopback
      ansible.builtin.shell: >-
        nohup python3 -c "import socket,time; s=socket.socket();
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);
        s.bind(('127.0.0.1', 18080)); s.listen(); time.sleep(30)" >/dev/null 2>&1 &
      changed_when: true
      when: inventory_hostname == groups['lab'][0]
    - name: See whether this host's loopback port 18080 is open
      ansible.builtin.wait_for:
        host: 127.0.0.1
        port: 18080
        timeout: 3
      register: loopback
      ignore_errors: true
    - name: Keep what each host saw
      ansible.builtin.copy:
        content: >-
          {{ {'address': address.stdout, 'loopback_open': loopback is succeeded, 'root': relops_lab_root} | to_json }}
        dest: "{{ result_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
"""


def test_hosts_have_their_own_address_and_loopback(ansible: Ansible, lab_fleet) -> None:
    lab = lab_fleet(3)
    results = os.path.join(ansible.workdir, "seen")
    os.makedirs(results)
    run = ansible.playbook(ansible.write_playbook(FACTS_PLAY), "-i", lab.inventory, "-e", "result_dir=%s" % results)
    assert run.returncode == 0, run.report
    seen = {}
    for host in lab.hosts:
        with open(os.path.join(results, "%s.json" % host.name), encoding="utf-8") as handle:
            seen[host.name] = json.load(handle)
    for host in lab.hosts:
        assert "inet %s/24" % host.address in seen[host.name]["address"]
        assert seen[host.name]["root"] == host.root and os.path.isdir(host.root)
    # Only the first host listens on its loopback; the others' loopbacks are their own.
    assert [seen[host.name]["loopback_open"] for host in lab.hosts] == [True, False, False]


def test_a_host_whose_sshd_stops_is_unreachable_and_comes_back(ansible: Ansible, lab_fleet) -> None:
    lab = lab_fleet(2)
    ping = ansible.write_playbook(
        """
        - name: Ping the lab
          hosts: lab
          gather_facts: false
          tasks:
            - name: Ping
              ansible.builtin.ping:
        """
    )
    lab_harness.stop_sshd(lab.host("lab2"))
    run = ansible.playbook(ping, "-i", lab.inventory)
    assert run.returncode != 0
    assert "lab1" in run.output and "unreachable=1" in run.output.split("lab2")[-1]
    lab_harness.start_sshd(lab.host("lab2"))
    lab_harness.wait_for_ssh(lab.host("lab2"))
    again = ansible.playbook(ping, "-i", lab.inventory)
    assert again.returncode == 0, again.report


def test_down_removes_every_trace(tmp_path) -> None:
    lab = lab_harness.up(2, str(tmp_path / "lab"))
    sshd_pids = [lab_harness.read_pid(host.sshd_pid_file) for host in lab.hosts]
    assert None not in sshd_pids
    lab_harness.down(lab)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert all(host.namespace not in namespaces for host in lab.hosts)
    assert lab.bridge + ":" not in links and lab.bridge + "@" not in links
    assert not os.path.exists(lab.directory)
    for pid in sshd_pids:
        assert pid is not None
        # Exited: gone, or a zombie waiting for init to reap it.
        assert not lab_harness.is_running(pid), "sshd %d survived the teardown" % pid
